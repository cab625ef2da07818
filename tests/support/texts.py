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

# Plain English sentences, most of them movie reviews: what the goldens' scripted model writes
# and what the review tests' synthetic runs hold.
SENTENCES = (
    "The story moves at a steady pace and the actors seem to enjoy every scene.",
    "I found the second half slow, but the ending made up for most of it.",
    "Nothing in this film works, from the flat jokes to the muddy sound.",
    "A clever script and a warm cast make this an easy evening to recommend.",
    "The director wastes a good premise on characters nobody could care about.",
    "Every frame looks beautiful and the music carries the quieter moments.",
    "It drags on far too long and the twist is obvious from the first act.",
    "My whole family laughed from start to finish and asked to see it again.",
    "The dialogue sounds stiff, as if nobody had read the lines out loud.",
    "Strong performances hold together a plot that is thinner than it looks.",
    "Please send the report to the team before the meeting on Monday.",
    "The new release fixes the login problem and loads pages faster.",
    "What is the capital of the country with the largest population?",
    "Explain how a simple water filter removes dirt from rain water.",
    "Write a short poem about the first snow falling over a quiet town.",
    "The river flows north through three valleys before it reaches the sea.",
)
