"""Prints one closing line for JUnit XML reports: `<label>: N passed, N failed, N skipped`."""
import argparse
import sys
import xml.etree.ElementTree as ET


def count(path):
    passed = failed = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" in kinds:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--label", default="tests")
    args = parser.parse_args()
    totals = [0, 0, 0]
    for path in args.reports:
        for i, n in enumerate(count(path)):
            totals[i] += n
    print(f"{args.label}: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
