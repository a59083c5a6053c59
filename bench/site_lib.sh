# shellcheck shell=bash
# Sourced by the network benches (server_rss.sh, deployment_bench.sh): a
# scratch folder as the working directory, removed on exit with every
# process recorded in `pids`, a free loopback port, a tokens file.
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_tokens COUNT: tokens.txt with sites site0 .. site<COUNT-1>.
write_tokens() {
  : > tokens.txt
  for ((c = 0; c < $1; c++)); do echo "site$c token-site-$c-$RANDOM$RANDOM" >> tokens.txt; done
}
