"""The `prepare` and `ocr` stages and what they read: MVSA's records, labels, splits, tweet text,
images, leakage, text inside images, and the data report."""
