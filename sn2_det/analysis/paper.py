"""Published reference figures that our measurements are printed beside."""

# ShuffleNet V2 paper, Table 5: MFLOPs (multiply-adds, 224x224, with the 1000-way
# classifier) and millions of parameters, per widen factor.
TABLE5 = {0.5: (41, 1.4), 1.0: (146, 2.3), 1.5: (299, 3.5), 2.0: (591, 7.4)}

# ShuffleNet V2 paper, Table 7 (COCO minival, Light-Head R-CNN, 800x1200): per backbone
# and level (backbone MFLOPs), (mmAP %, GPU images/s at batch 4 on a GTX 1080Ti).
TABLE7 = {
    'xception': {40: (21.9, 178), 140: (29.0, 131), 300: (31.3, 101), 500: (32.9, 83)},
    'shufflenet_v1': {40: (20.9, 152), 140: (27.0, 85), 300: (29.9, 76), 500: (32.9, 60)},
    'mobilenet_v2': {40: (20.7, 146), 140: (24.4, 111), 300: (30.0, 94), 500: (30.6, 72)},
    'shufflenet_v2': {40: (22.5, 188), 140: (29.0, 146), 300: (31.8, 109), 500: (33.3, 87)},
    'shufflenet_v2_star': {40: (23.7, 183), 140: (29.6, 138), 300: (32.2, 105),
                           500: (34.2, 83)},
}
