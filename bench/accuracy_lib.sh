# Shared by the strategy benches: final_accuracy ARGS... runs one
# `fedtrack run --json` with versioning off and a throw-away journal in the
# current folder, and prints the final test accuracy (or "failed").
final_accuracy() {
  # shellcheck disable=SC2068
  "$fedtrack" run --json --set versioning.enabled=false --set tracking.journal="$PWD/journal.sqlite" $@ 2>/dev/null |
    tail -1 | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["final"]["eval_accuracy"])' ||
    echo "failed"
}
