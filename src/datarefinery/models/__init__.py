"""Small classifiers trained on records (TF-IDF or embeddings + logistic regression, a fine-tuned
transformer) and out-of-fold scoring with them: the learner of the S3 loop, the utility metric and
the curation steps that cross-fit a classifier.
"""
