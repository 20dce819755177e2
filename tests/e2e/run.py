"""Runs every tests/e2e/test_*.py and prints "e2e: N passed, N failed".
Usage: run.py [-k PATTERN]  (MAILSYNC_BIN selects the binaries)"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    loader = unittest.TestLoader()
    if len(sys.argv) > 2 and sys.argv[1] == "-k":
        loader.testNamePatterns = ["*%s*" % sys.argv[2]]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    print("e2e: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
