"""Training data: the datasets, samples, augmentation and folders of labelled images (numpy/OpenCV only)."""
