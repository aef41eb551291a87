#!/usr/bin/env bash
# Checks that a deploy works, after its rollout; exits non-zero when not, so
# the deploy workflow (.github/workflows/deploy.yaml) fails. Three checks,
# all of them run, every failure listed at the end:
#
#  1. Target health: every target group the gateway's Auto Scaling Group is
#     attached to (the public ALB's and the internal NLB's) has at least one
#     target and every target healthy, waited for up to HEALTH_TIMEOUT
#     seconds (a new instance starts "initial" until its checks pass;
#     "draining" ones are the old instances leaving and are not counted).
#  2. Telegram: getWebhookInfo says the webhook is WEBHOOK_URL (the gateways
#     register it at start) and reports no delivery error since the deploy
#     started (last_error_date later than DEPLOY_STARTED).
#  3. Alarms: no CloudWatch alarm whose name starts with ALARM_PREFIX is in
#     ALARM at the end of an ALARM_SETTLE-second window. The window lets an
#     alarm that the release trips (most evaluate 3 to 5 one-minute periods)
#     show, and one that the rollout itself touched clear.
#
# Settings (environment):
#   GATEWAY_ASG      the gateway group's name (terraform output gateway_asg_name)
#   WEBHOOK_URL      the expected webhook (terraform output webhook_url)
#   SECRET_ID        the secret with the bot token (terraform output
#                    telegram_secret_name; JSON, field telegram_token)
#   DEPLOY_STARTED   when the deploy started, in Unix seconds
#   ALARM_PREFIX     default: the deployment's name and a dash, taken from
#                    GATEWAY_ASG (<name>-gateway), e.g. "polybot-"
#   HEALTH_TIMEOUT   seconds to wait for healthy targets (default 600)
#   ALARM_SETTLE     seconds to watch the alarms (default 300)
#   POLL_INTERVAL    seconds between looks (default 15)
#   TELEGRAM_API_URL the Bot API (default https://api.telegram.org)
# The AWS CLI takes its region and credentials from the usual variables.
#
# The bot token is read at run time, masked in the job's log before use
# (::add-mask::), and never put on a command line: curl reads the URL that
# holds it from standard input.

set -euo pipefail

: "${GATEWAY_ASG:?set GATEWAY_ASG to the gateway Auto Scaling Group}"
: "${WEBHOOK_URL:?set WEBHOOK_URL to the expected webhook URL}"
: "${SECRET_ID:?set SECRET_ID to the Secrets Manager secret holding telegram_token}"
: "${DEPLOY_STARTED:?set DEPLOY_STARTED to the deploy start time in Unix seconds}"
ALARM_PREFIX="${ALARM_PREFIX:-${GATEWAY_ASG%-gateway}-}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-600}"
ALARM_SETTLE="${ALARM_SETTLE:-300}"
POLL_INTERVAL="${POLL_INTERVAL:-15}"
TELEGRAM_API_URL="${TELEGRAM_API_URL:-https://api.telegram.org}"
for setting in DEPLOY_STARTED HEALTH_TIMEOUT ALARM_SETTLE POLL_INTERVAL; do
  if ! [[ "${!setting}" =~ ^[0-9]+$ ]]; then
    echo "$setting must be a whole number of seconds, not \"${!setting}\"" >&2
    exit 2
  fi
done

failures=()

fail() {
  echo "::error::$1"
  failures+=("$1")
}

summary() {
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    echo "$1" >>"$GITHUB_STEP_SUMMARY"
  fi
}

# ----------------------------------------------------------- target health

# Prints the targets of one group that are not healthy ("id state reason"),
# draining ones left out; prints "no targets" when it has none in service.
unhealthy_targets() {
  local health
  health=$(aws elbv2 describe-target-health --target-group-arn "$1" \
    --query 'TargetHealthDescriptions[].[Target.Id, TargetHealth.State, TargetHealth.Reason]' \
    --output text)
  local in_service=0 id state reason
  while read -r id state reason; do
    [[ -z "$id" ]] && continue
    case "$state" in
      healthy) in_service=$((in_service + 1)) ;;
      draining) ;;
      *) echo "$id $state ${reason:-}" ;;
    esac
  done <<<"$health"
  if ((in_service == 0)); then
    echo "no targets in service"
  fi
}

check_targets() {
  local groups
  groups=$(aws autoscaling describe-auto-scaling-groups \
    --auto-scaling-group-names "$GATEWAY_ASG" \
    --query 'AutoScalingGroups[0].TargetGroupARNs' --output text)
  if [[ -z "$groups" || "$groups" == "None" ]]; then
    fail "$GATEWAY_ASG is attached to no target group"
    return
  fi
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) group bad
  for group in $groups; do
    while :; do
      bad=$(unhealthy_targets "$group")
      if [[ -z "$bad" ]]; then
        echo "targets: ${group#*:targetgroup/} all healthy"
        summary "- targets of \`${group#*:targetgroup/}\`: all healthy"
        break
      fi
      if ((SECONDS >= deadline)); then
        fail "target group ${group#*:targetgroup/} still not healthy after ${HEALTH_TIMEOUT}s: $(echo "$bad" | paste -sd ';' -)"
        break
      fi
      echo "targets: ${group#*:targetgroup/} waiting: $(echo "$bad" | paste -sd ';' -)"
      sleep "$POLL_INTERVAL"
    done
  done
}

# ----------------------------------------------------------------- webhook

check_webhook() {
  local secret token info
  if ! secret=$(aws secretsmanager get-secret-value --secret-id "$SECRET_ID" \
    --query SecretString --output text); then
    fail "could not read the secret $SECRET_ID"
    return
  fi
  token=$(jq -r '.telegram_token // empty' <<<"$secret" 2>/dev/null || true)
  unset secret
  if [[ -z "$token" ]]; then
    fail "the secret $SECRET_ID has no telegram_token"
    return
  fi
  echo "::add-mask::$token"
  # The URL holding the token goes to curl on standard input (printf is a
  # shell builtin), so no process listing shows it.
  if ! info=$(printf 'url = "%s/bot%s/getWebhookInfo"\n' "$TELEGRAM_API_URL" "$token" |
    curl --silent --show-error --max-time 30 --retry 3 --config -); then
    fail "getWebhookInfo could not be called"
    return
  fi
  unset token
  if [[ "$(jq -r '.ok' <<<"$info" 2>/dev/null)" != "true" ]]; then
    fail "getWebhookInfo failed: $(jq -r '.description // "not a Bot API answer"' <<<"$info" 2>/dev/null)"
    return
  fi
  local url error_date error_message pending
  url=$(jq -r '.result.url // ""' <<<"$info")
  error_date=$(jq -r '.result.last_error_date // 0' <<<"$info")
  error_message=$(jq -r '.result.last_error_message // ""' <<<"$info")
  pending=$(jq -r '.result.pending_update_count // 0' <<<"$info")
  # Compared arithmetically below: only digits may reach $(( )).
  [[ "$error_date" =~ ^[0-9]+$ ]] || error_date=0
  if [[ "$url" != "$WEBHOOK_URL" ]]; then
    fail "the webhook is \"$url\", not \"$WEBHOOK_URL\""
  fi
  if ((error_date > DEPLOY_STARTED)); then
    fail "Telegram's last delivery error is from $(date -u -d "@$error_date" '+%F %T UTC'), after the deploy started: $error_message"
  fi
  local last_error="no delivery error"
  if ((error_date > 0)); then
    last_error="last delivery error $(date -u -d "@$error_date" '+%F %T UTC')"
  fi
  echo "webhook: $url ($pending pending updates, $last_error)"
  summary "- webhook: \`$url\`, $pending pending updates"
}

# ------------------------------------------------------------------ alarms

alarms_in_alarm() {
  aws cloudwatch describe-alarms --alarm-name-prefix "$ALARM_PREFIX" \
    --alarm-types MetricAlarm CompositeAlarm --state-value ALARM --output json |
    jq -r '(.MetricAlarms + .CompositeAlarms)[] | select(.StateValue == "ALARM")
      | "\(.AlarmName): \(.StateReason)"'
}

check_alarms() {
  local deadline=$((SECONDS + ALARM_SETTLE)) firing
  while :; do
    if ! firing=$(alarms_in_alarm); then
      fail "could not list the alarms"
      return
    fi
    if ((SECONDS >= deadline)); then
      break
    fi
    echo "alarms: watching ${ALARM_PREFIX}* for $((deadline - SECONDS))s more; in ALARM now: ${firing:-none}"
    sleep "$POLL_INTERVAL"
  done
  if [[ -n "$firing" ]]; then
    while read -r line; do
      fail "alarm in ALARM: $line"
    done <<<"$firing"
  else
    echo "alarms: none of ${ALARM_PREFIX}* in ALARM"
    summary "- alarms \`${ALARM_PREFIX}*\`: none in ALARM"
  fi
}

summary "### deploy verification"
check_targets
check_webhook
check_alarms

if ((${#failures[@]} > 0)); then
  summary "**${#failures[@]} check(s) failed:**"
  for f in "${failures[@]}"; do
    summary "- $f"
  done
  echo "deploy verification failed (${#failures[@]}):" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "deploy verified"
