"""Text on which a token is far less than the 3.5 characters of English: other scripts, emoji (with
joiners, flags and variation selectors), code. Each is under 160 characters, so it fits the
sentiment task's text field."""

HARD_TEXTS = (
    "この映画は本当に素晴らしかった！音楽も俳優も最高で、もう一度観たいです。😍🎬",
    "Фильм ужасно скучный, актёры играют плохо, а сюжет предсказуем с первой минуты. 😴👎",
    "👩‍👩‍👧‍👦🍿🎉 Loved it!!! 🤩🤩🤩 10/10 would watch again 🇫🇮🇯🇵🇧🇷 ❤️‍🔥❤️‍🔥",
    'def verdict(film): return {"plot": 2 / 10, "acting": None}  # 💀 dull, skip it',
    "剧情拖沓，人物单薄，配乐刺耳。浪费了两个小时。🙄💤 不推荐。",
    "فيلم رائع جداً، التمثيل ممتاز والقصة مؤثرة. أنصح الجميع بمشاهدته! 🌟🌟🌟",
)
