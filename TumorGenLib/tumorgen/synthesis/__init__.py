"""Label map → four MR contrasts, mask augmentation and synthetic datasets."""
