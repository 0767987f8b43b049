"""Write the model index (metafile.yml) from the configs, measuring every figure.

    python tools/make_metafile.py               # writes metafile.yml (a few minutes on CPU)
    python tools/make_metafile.py --out -       # prints it
"""
import argparse
import os.path as osp
import sys

from sn2_det.analysis.model_index import build_index, dump_index

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=osp.join(ROOT, 'metafile.yml'),
                        help="output file, '-' for stdout")
    args = parser.parse_args(argv)
    text = dump_index(build_index(ROOT))
    if args.out == '-':
        sys.stdout.write(text)
    else:
        with open(args.out, 'w') as f:
            f.write(text)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    from sn2_det.utils.cli import run_tool  # one-line errors; --debug: traceback
    run_tool(main)
