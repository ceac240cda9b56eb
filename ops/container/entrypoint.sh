#!/bin/sh
# The image's entry point (Containerfile): the command chooses what runs.
#
#   serve          the forecast endpoint on 0.0.0.0:$PORT (8000), serving the registry's champion
#                  (or HELPERS_ARTIFACT), following promotions; arguments go to helpers.app.service
#   operate        one operating cycle (make operate)
#   scheduled-run  one unattended run into /data/runs/<time>/, published on success (make scheduled-run)
#   build          the pipeline, once (make run)
#   models | promote N | rollback   the model registry (make models, promote, rollback)
#   schedule       a loop: the operating cycle every day at OPERATE_AT (UTC, 06:00), then the
#                  scheduled run on WEEKLY_DAY (1 = Monday ... 7 = Sunday; 1)
#   dashboard      the Streamlit dashboard on 0.0.0.0:$DASHBOARD_PORT (8501); it asks the service at
#                  HELPERS_DASHBOARD_SERVICE_URL and reads the warehouse on the volume read-only
#   pages          the published reports and monitoring pages (/data/reports, /data/monitoring), read-only,
#                  on 0.0.0.0:$PAGES_PORT (8080); nothing else of /data is served
#   healthcheck    the image's HEALTHCHECK: GET /health when this container serves, else healthy
#   anything else  run as given (python -m helpers.lifecycle.tracking ui ..., sh)
#
# Exit codes are the programs' own (README, Exit codes): 0 ok, 1 failed, 2 refused, 3 busy.
set -eu

data=/data  # the volume (the Containerfile sets every HELPERS_* path under it)
serving=/tmp/helpers-health-url  # what the healthcheck asks, written by serve and pages

# What a run writes goes under the volume; runs/ (the run lock, scheduled runs) too, through /app/runs.
[ -d "$data" ] && [ -w "$data" ] && mkdir -p "$data/runs"

# The schedule loop runs each program as a child it waits for, so SIGTERM (docker stop) reaches the
# running cycle or scheduled run, which stops its build and records it, before the loop exits.
child=
stop() {
  [ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child" || true; }
  exit 0
}
in_child() {
  "$@" &
  child=$!
  status=0
  wait "$child" || status=$?
  child=
  return "$status"
}

# Seconds until the next HH:MM (UTC), at least one.
until_next() {
  now=$(date -u +%s)
  next=$(date -u -d "today $1" +%s)
  [ "$next" -gt "$now" ] || next=$(date -u -d "tomorrow $1" +%s)
  echo $((next - now))
}

command=${1:-serve}
[ $# -eq 0 ] || shift
case "$command" in
  serve)
    echo "http://127.0.0.1:${PORT:-8000}/health" > "$serving"
    exec python -m helpers.app.service --host 0.0.0.0 --port "${PORT:-8000}" "$@" ;;
  operate) exec python -m helpers.app.cycle "$@" ;;
  scheduled-run) exec python -m helpers.app.scheduler "$@" ;;
  build) exec python -m helpers.app.pipeline build "$@" ;;
  models) exec python -m helpers.lifecycle.registry list "$@" ;;
  promote | rollback) exec python -m helpers.lifecycle.registry "$command" "$@" ;;
  schedule)
    at=${OPERATE_AT:-06:00}
    day=${WEEKLY_DAY:-1}
    case "$day" in [1-7]) ;; *) echo "error: WEEKLY_DAY must be 1 (Monday) to 7 (Sunday), got $day" >&2; exit 2 ;; esac
    date -u -d "today $at" > /dev/null 2>&1 || { echo "error: OPERATE_AT must be HH:MM (UTC), got $at" >&2; exit 2; }
    echo "schedule: the operating cycle daily at $at UTC, the scheduled run after it on day $day of the week"
    trap stop TERM INT
    while :; do
      wait_s=$(until_next "$at")
      echo "schedule: next cycle in ${wait_s} s"
      in_child sleep "$wait_s" || true
      in_child python -m helpers.app.cycle || echo "schedule: the cycle exited with $? (see above)" >&2
      if [ "$(date -u +%u)" = "$day" ]; then
        in_child python -m helpers.app.scheduler || echo "schedule: the scheduled run exited with $? (see above)" >&2
      fi
    done ;;
  dashboard)
    app=$(python -c "import helpers.dashboard as d, pathlib; print(pathlib.Path(d.__file__).with_name('app.py'))")
    exec python -m streamlit run "$app" --server.address 0.0.0.0 --server.port "${DASHBOARD_PORT:-8501}" \
      --server.headless true --browser.gatherUsageStats false "$@" ;;
  pages)
    site=$(mktemp -d)  # only the two published sites, as links: the warehouse and the registry stay private
    ln -s "$data/reports" "$site/reports"
    ln -s "$data/monitoring" "$site/monitoring"
    printf '<!doctype html><title>Demand analytics</title><p><a href="reports/index.html">Reports</a></p>\n<p><a href="monitoring/index.html">Monitoring</a></p>\n' \
      > "$site/index.html"
    echo "http://127.0.0.1:${PAGES_PORT:-8080}/" > "$serving"
    exec python -m http.server "${PAGES_PORT:-8080}" --bind 0.0.0.0 --directory "$site" ;;
  healthcheck)
    [ -f "$serving" ] || exit 0
    exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)' "$(cat "$serving")" ;;
  *) exec "$command" "$@" ;;
esac
