"""Published test outputs of other methods, scored through the method interface (``released``)."""
