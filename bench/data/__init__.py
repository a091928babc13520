"""DeepFashion data layer: split files, image names, pose maps, the synthetic generator."""
