"""Published reference figures that our measurements are printed beside."""

# ShuffleNet V2 paper, Table 5: MFLOPs (multiply-adds, 224x224, with the 1000-way
# classifier) and millions of parameters, per widen factor.
TABLE5 = {0.5: (41, 1.4), 1.0: (146, 2.3), 1.5: (299, 3.5), 2.0: (591, 7.4)}
