# Reads a JSON list of [new, old] flavor pairs on stdin and prints, as JSON,
# what Nova's own nova.compute.utils.upsize_quota_delta returns for each.
import json
import sys

from nova.compute import utils

pairs = json.load(sys.stdin)
out = [utils.upsize_quota_delta(new, old) for new, old in pairs]
json.dump(out, sys.stdout)
