//! The deployment, proven against a live AWS emulator:
//!
//! 1. `terraform plan` of `terraform/` with the real hashicorp/aws provider
//!    against moto, for every `terraform/region.*.tfvars` (the provider's
//!    own validation runs here, which `fmt` and checkov do not);
//! 2. `terraform apply` of one region, every planned resource except the
//!    few in [`EXCLUDED`], each named with the reason moto cannot create it;
//! 3. the real `gateway`, `detector worker` and `reporter` binaries run with
//!    the environment and arguments the applied launch templates' user data
//!    gives their containers (decoded from the state, over the Dockerfiles'
//!    `ENV`), changed only where [`run`] says why (endpoints and ports that
//!    exist only inside AWS), against moto and the Telegram emulator: a
//!    photo gets its annotated reply; with no detector in service the
//!    reporter publishes more than the scaling policy's target; every
//!    Dockerfile HEALTHCHECK command passes against its running binary;
//! 4. IAM: the applied role policies grant every row of the IAM table
//!    (`polybot_deploy::iam`), every AWS call the binaries made (recorded by
//!    moto, told apart by access key) has a row, and no grant lacks one;
//!    only the gateway may erase a chat, and detectors may delete only
//!    their own results;
//! 5. one retention clock: applied with a `retention_days` other than the
//!    default, the images bucket's lifecycle and every service's
//!    `POLYBOT_RETENTION_DAYS` carry that value;
//! 6. operations: applied with `operator_ssm_access` (and its endpoints) on,
//!    only the gateways' role gets Session Manager's managed policy and the
//!    endpoints admit only the gateways' security group (the default plan
//!    has neither); the dashboard exists under the `dashboard_name` output
//!    and shows what operators need; every alarm (the target 4xx and
//!    detector-at-maximum ones included) links to a heading of
//!    `docs/RUNBOOK.md`; both load balancers check `/readyz`, while the
//!    gateway group replaces on liveness only;
//! 7. the detector's least privilege: it reads only the Results tokens'
//!    secret (the gateway reads both, and the round trip runs with the
//!    Results tokens in that secret alone), writes only result keys, uses
//!    the stack's key only through S3, DynamoDB and Secrets Manager, and its
//!    security group has no egress to the internet.
//!
//! What it cannot prove: moto's fidelity (it accepts some requests AWS
//! refuses and does not emulate everything) and IAM enforcement (moto
//! authorizes everything, hence the table check).
//!
//! Terraform and the provider: `POLYBOT_TERRAFORM` or `terraform` on PATH;
//! the provider from `POLYBOT_TF_PLUGIN_DIR`, a filesystem mirror, or the
//! registry. Without them the test prints one `SKIP` line, or fails when
//! `POLYBOT_REQUIRE_DEPLOY_TEST=1` (CI).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use polybot_deploy::files::{Dockerfile, UserData, user_data_from_base64};
use polybot_deploy::iam::{self, Resource, Service};
use polybot_deploy::terraform::{
    ProviderSource, Workdir, find_provider, find_terraform, planned_creates, state_resources, tfvar,
};
use polybot_deploy::{binaries, runbook, workspace_root};
use polybot_testkit::{MotoServer, install_crypto_provider};
use serde_json::Value;
use tg_emulator::{Emulator, SentKind, UserMessageOptions};

/// The precision the applied stack runs (see the apply).
const APPLIED_PRECISION: &str = "int8";

/// The retention clock the applied stack runs (`retention_days`; not the
/// default 30, so a value that does not get through shows).
const APPLIED_RETENTION_DAYS: u64 = 7;

/// Planned resources the apply leaves out, by address, with the reason.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "module.storage.aws_sqs_queue_redrive_allow_policy.dlq",
        "moto 5.2.5 does not implement the SQS RedriveAllowPolicy queue attribute: the provider \
         waits for it to read back and the apply never finishes",
    ),
    (
        "module.storage.aws_s3_bucket_policy.images",
        "moto 5.2.5 evaluates bucket policies but serves plain HTTP, so the policy's \
         aws:SecureTransport=false deny refuses every request (PutObject 403); real S3 is \
         reached over HTTPS",
    ),
];

/// The image tag the plans use (no image is pulled).
const IMAGE_TAG: &str = "deploy-test";

/// The runbook URL the applied stack links its alarms to (not the default,
/// so a value that does not get through shows).
const APPLIED_RUNBOOK_URL: &str = "https://example.com/polybot/blob/main/docs/RUNBOOK.md";

/// What the apply sets beyond the region's tfvars, each for a reason given
/// where it is checked; the apply's own plan (and so its targets) uses the
/// same variables.
fn applied_vars() -> Vec<String> {
    vec![
        format!("-var=image_tag={IMAGE_TAG}"),
        // Every other test runs the default, fp32; the applied stack runs
        // int8, so the setting's way from Terraform through the user data
        // to the image's INT8 model is proven too.
        format!("-var=detector_precision={APPLIED_PRECISION}"),
        // Likewise the retention clock, to the lifecycle and the services.
        format!("-var=retention_days={APPLIED_RETENTION_DAYS}"),
        // The opt-in operator path, with its endpoints.
        "-var=operator_ssm_access=true".to_owned(),
        "-var=operator_ssm_endpoints=true".to_owned(),
        format!("-var=runbook_url={APPLIED_RUNBOOK_URL}"),
    ]
}

/// Resources of the opt-in operator access: in the applied plan, not in
/// the default one.
const OPERATOR_ACCESS_RESOURCES: &[&str] = &[
    "module.gateway.module.service.aws_iam_role_policy_attachment.managed[\"",
    "module.gateway.aws_vpc_endpoint.ssm[\"ssm\"]",
    "module.gateway.aws_vpc_endpoint.ssm[\"ssmmessages\"]",
    "module.gateway.aws_vpc_endpoint.ssm[\"ec2messages\"]",
    "module.gateway.aws_security_group.ssm_endpoints[0]",
];

/// Each service's AWS access key in the round trip, so moto's recording
/// tells their calls apart.
fn access_key(service: Service) -> String {
    format!("POLYBOTTEST{}", service.name().to_uppercase())
}

/// Writes past the test harness's output capture, so the figures and a
/// SKIP show in `cargo xtask test`'s output.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn elapsed(t: Instant) -> String {
    format!("{:.1} s", t.elapsed().as_secs_f64())
}

#[test]
fn terraform_plans_every_region_applies_one_and_the_binaries_answer_a_photo_on_it() {
    let required = std::env::var("POLYBOT_REQUIRE_DEPLOY_TEST").is_ok_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "POLYBOT_REQUIRE_DEPLOY_TEST=1 but: {why}");
        say(&format!(
            "SKIP deployment test (terraform against moto): {why}"
        ));
    };
    let terraform = match find_terraform() {
        Ok(t) => t,
        Err(e) => return skip(e),
    };
    let provider = match find_provider() {
        Ok(p) => p,
        Err(e) => return skip(e),
    };
    install_crypto_provider();
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let recording = scratch.path().join("moto-recording.jsonl");
    let moto = MotoServer::try_start_with_env(&[
        (
            "MOTO_RECORDER_FILEPATH",
            recording.to_str().expect("a UTF-8 temp path"),
        ),
        // AWS managed policies (operator_ssm_access attaches
        // AmazonSSMManagedInstanceCore) exist in moto only when loaded.
        ("MOTO_IAM_LOAD_MANAGED_POLICIES", "true"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let root = workspace_root();

    let work = Workdir::new(
        terraform,
        &root.join("terraform"),
        scratch.path(),
        moto.endpoint(),
    )
    .expect("a working copy of terraform/");
    let started = Instant::now();
    if let Err(e) = work.init(&provider) {
        // Only a provider that cannot be had is a SKIP; a lock file that
        // does not match the provider is a failure.
        if provider == ProviderSource::Registry && !e.contains("lock file") {
            return skip(format!(
                "no AWS provider: no filesystem mirror found (set POLYBOT_TF_PLUGIN_DIR) and \
                 `terraform init` from the registry failed: {}",
                e.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
            ));
        }
        panic!("{e}");
    }
    say(&format!(
        "deployment: terraform init ({}) in {}",
        match &provider {
            ProviderSource::PluginDir(d) => format!("-plugin-dir={}", d.display()),
            ProviderSource::Registry => "registry".to_owned(),
        },
        elapsed(started)
    ));

    // ------------------------------------------------------------- plans
    let regions = region_files(&root.join("terraform"));
    assert!(!regions.is_empty(), "no terraform/region.*.tfvars");
    let mut zones = BTreeSet::new();
    for (_, file) in &regions {
        let text = std::fs::read_to_string(file).expect("tfvars");
        zones.insert(tfvar(&text, "hosted_zone_name").expect("hosted_zone_name in every tfvars"));
    }
    for zone in &zones {
        create_public_zone(moto.endpoint(), zone);
    }
    let mut plans = BTreeMap::new();
    for (region, file) in &regions {
        let t = Instant::now();
        work.workspace(region).expect("workspace");
        let var_file = format!("-var-file={}", file_name(file));
        let out_file = format!("-out=tfplan-{region}");
        let image = format!("-var=image_tag={IMAGE_TAG}");
        work.ok(
            &[
                "plan",
                "-input=false",
                "-no-color",
                "-lock=false",
                var_file.as_str(),
                image.as_str(),
                out_file.as_str(),
            ],
            Duration::from_secs(600),
        )
        .unwrap_or_else(|e| panic!("the plan for {region} fails:\n{e}"));
        let plan = work
            .show_json(Some(format!("tfplan-{region}").as_str()))
            .expect("plan JSON");
        let creates = planned_creates(&plan);
        say(&format!(
            "deployment: plan {region}: {} resources to create ({})",
            creates.len(),
            elapsed(t)
        ));
        plans.insert(region.clone(), creates);
    }

    // ------------------------------------------------------------- apply
    let (region, file) = &regions[0];
    let t = Instant::now();
    work.workspace(region).expect("workspace");
    let var_file = format!("-var-file={}", file_name(file));
    let vars = applied_vars();
    let mut plan_args: Vec<&str> = vec![
        "plan",
        "-input=false",
        "-no-color",
        "-lock=false",
        var_file.as_str(),
        "-out=tfplan-apply",
    ];
    plan_args.extend(vars.iter().map(String::as_str));
    work.ok(&plan_args, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("the plan to apply in {region} fails:\n{e}"));
    let creates = &planned_creates(&work.show_json(Some("tfplan-apply")).expect("plan JSON"));
    // The operator access is opt-in: the applied plan has it, the region's
    // default plan does not.
    for resource in OPERATOR_ACCESS_RESOURCES {
        let has = |plan: &[(String, String)]| plan.iter().any(|(a, _)| a.starts_with(resource));
        assert!(
            has(creates),
            "operator_ssm_access=true does not create {resource}"
        );
        assert!(
            !has(&plans[region]),
            "{resource} is planned although operator_ssm_access defaults to false"
        );
    }
    say(&format!(
        "deployment: plan {region} with operator_ssm_access: {} resources to create ({})",
        creates.len(),
        elapsed(t)
    ));
    for (address, reason) in EXCLUDED {
        assert!(
            creates.iter().any(|(a, _)| a == address),
            "{address} is excluded from the apply ({reason}) but no longer planned: drop it from EXCLUDED"
        );
    }
    let targets: Vec<String> = creates
        .iter()
        .filter(|(a, _)| !EXCLUDED.iter().any(|(x, _)| x == a))
        .map(|(a, _)| format!("-target={a}"))
        .collect();
    let t = Instant::now();
    let mut args: Vec<&str> = vec![
        "apply",
        "-input=false",
        "-no-color",
        "-auto-approve",
        "-lock=false",
        "-parallelism=30",
        var_file.as_str(),
    ];
    args.extend(vars.iter().map(String::as_str));
    args.extend(targets.iter().map(String::as_str));
    work.ok(&args, Duration::from_secs(900))
        .unwrap_or_else(|e| panic!("the apply of {region} fails:\n{e}"));
    let state = work.show_json(None).expect("state JSON");
    let resources = state_resources(&state);
    let applied = resources.iter().filter(|r| r.1 == "managed").count();
    say(&format!(
        "deployment: apply {region}: {applied} of {} planned resources created, {} excluded ({}): {}",
        creates.len(),
        EXCLUDED.len(),
        elapsed(t),
        EXCLUDED
            .iter()
            .map(|(a, why)| format!("{a}: {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    assert_eq!(
        applied,
        creates.len() - EXCLUDED.len(),
        "every planned resource but the excluded ones is in the state"
    );
    let stack = Stack::from_state(&resources);

    // The IAM table against the applied role policies.
    check_grants(&stack);
    check_reporter_reads_only_the_backlog_item(&stack);
    check_only_the_gateway_erases(&stack);
    // The bucket's lifecycle and the services' records keep one clock.
    check_one_retention_clock(&resources, &stack);
    // The Results port admits the detectors and nothing else.
    check_results_port(&resources);
    // Operations: Session Manager for the gateways only, the dashboard, the
    // alarms' runbook links, readiness at the load balancers.
    check_operator_access(&resources, &stack);
    check_dashboard(&state, &resources, &stack);
    check_alarms_link_the_runbook(&resources, &root);
    check_readiness_at_the_load_balancers(&resources);
    // The detector: its own secret, result keys, the key through services,
    // no internet.
    check_detector_least_privilege(&resources, &stack);

    // --------------------------------------------- binaries on the stack
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let observed = runtime.block_on(round_trip(&moto, &stack, &root, scratch.path()));
    check_observed_calls(&observed);
    say(&format!(
        "deployment: total {} (plans of {} regions, one apply, the photo round trip, IAM)",
        elapsed(started),
        regions.len()
    ));
}

/// The gateway's Results gRPC port in the deployment.
const RESULTS_PORT: u64 = 50051;

/// Every ingress rule in the applied state that opens [`RESULTS_PORT`]
/// admits only security groups, never address ranges, and only the
/// detectors' group or the internal load balancer's (whose own ingress on
/// the port admits the detectors' group alone). Another host in the VPC
/// therefore cannot reach `polybot.v1.Results`.
fn check_results_port(resources: &[(String, String, String, Value)]) {
    let id_of = |address: &str| -> String {
        resources
            .iter()
            .find(|r| r.0 == address)
            .and_then(|r| r.3.get("id").and_then(Value::as_str))
            .unwrap_or_else(|| panic!("{address} has no id in the state"))
            .to_owned()
    };
    let detectors = id_of("module.detector.module.service.aws_security_group.this");
    let load_balancer = id_of("module.gateway.aws_security_group.results");
    let covers = |rule: &Value| -> bool {
        let n = |k: &str| rule.get(k).and_then(Value::as_u64).unwrap_or(0);
        let all = rule.get("protocol").and_then(Value::as_str) == Some("-1");
        all || (n("from_port") <= RESULTS_PORT && RESULTS_PORT <= n("to_port"))
    };
    let strings = |rule: &Value, k: &str| -> Vec<String> {
        match rule.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) if !one.is_empty() => vec![one.clone()],
            _ => Vec::new(),
        }
    };
    // (where, the security groups it admits, the address ranges it admits)
    let mut openings: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for (address, mode, kind, values) in resources {
        if mode != "managed" {
            continue;
        }
        let ranges = |rule: &Value| -> Vec<String> {
            [
                "cidr_blocks",
                "ipv6_cidr_blocks",
                "prefix_list_ids",
                "cidr_ipv4",
                "cidr_ipv6",
                "prefix_list_id",
            ]
            .iter()
            .flat_map(|k| strings(rule, k))
            .collect()
        };
        match kind.as_str() {
            "aws_security_group" => {
                let own = values.get("id").and_then(Value::as_str).unwrap_or_default();
                for rule in values
                    .get("ingress")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if covers(rule) {
                        let mut groups = strings(rule, "security_groups");
                        if rule.get("self").and_then(Value::as_bool) == Some(true) {
                            groups.push(own.to_owned());
                        }
                        openings.push((
                            format!("{address} (inline, to {own})"),
                            groups,
                            ranges(rule),
                        ));
                    }
                }
            }
            "aws_security_group_rule"
                if values.get("type").and_then(Value::as_str) == Some("ingress")
                    && covers(values) =>
            {
                let to = strings(values, "security_group_id").join(",");
                let mut groups = strings(values, "source_security_group_id");
                if values.get("self").and_then(Value::as_bool) == Some(true) {
                    groups.push(to.clone());
                }
                openings.push((format!("{address} (to {to})"), groups, ranges(values)));
            }
            "aws_vpc_security_group_ingress_rule" if covers(values) => {
                let to = strings(values, "security_group_id").join(",");
                openings.push((
                    format!("{address} (to {to})"),
                    strings(values, "referenced_security_group_id"),
                    ranges(values),
                ));
            }
            _ => {}
        }
    }
    assert!(
        !openings.is_empty(),
        "no ingress rule opens port {RESULTS_PORT}: the detectors could not report"
    );
    for (at, groups, ranges) in &openings {
        assert!(
            ranges.is_empty(),
            "{at} opens the Results port {RESULTS_PORT} to address ranges {ranges:?}"
        );
        for g in groups {
            assert!(
                *g == detectors || *g == load_balancer,
                "{at} opens the Results port {RESULTS_PORT} to security group {g}, \
                 which is neither the detectors' ({detectors}) nor the internal load balancer's"
            );
        }
    }
    let into_load_balancer: BTreeSet<&String> = openings
        .iter()
        .filter(|(at, ..)| at.contains(&load_balancer))
        .flat_map(|(_, groups, _)| groups)
        .collect();
    assert_eq!(
        into_load_balancer,
        BTreeSet::from([&detectors]),
        "the internal load balancer admits the Results port from the detectors alone"
    );
    say(&format!(
        "deployment: Results port {RESULTS_PORT}: {} ingress rules, all from the detectors' group or through the internal load balancer",
        openings.len()
    ));
}

/// The values of the resource at `address` in the state.
fn resource<'a>(resources: &'a [(String, String, String, Value)], address: &str) -> &'a Value {
    &resources
        .iter()
        .find(|r| r.0 == address)
        .unwrap_or_else(|| panic!("{address} is not in the state"))
        .3
}

/// The managed resources of one type.
fn of_type<'a>(
    resources: &'a [(String, String, String, Value)],
    kind: &str,
) -> Vec<(&'a str, &'a Value)> {
    resources
        .iter()
        .filter(|r| r.1 == "managed" && r.2 == kind)
        .map(|r| (r.0.as_str(), &r.3))
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn texts(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) if !one.is_empty() => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Session Manager (operator_ssm_access, on in the applied stack) is the
/// gateways' alone: its managed policy is attached to the gateway role and
/// to no other role, and its endpoints admit HTTPS from the gateways'
/// security group only, never from an address range.
fn check_operator_access(resources: &[(String, String, String, Value)], stack: &Stack) {
    let role = |service: Service| {
        text(
            resource(
                resources,
                &format!("module.{}.module.service.aws_iam_role.this", service.name()),
            ),
            "name",
        )
        .to_owned()
    };
    let attachments: Vec<(String, String)> = of_type(resources, "aws_iam_role_policy_attachment")
        .into_iter()
        .map(|(_, v)| (text(v, "role").to_owned(), text(v, "policy_arn").to_owned()))
        .collect();
    let ssm = format!(":policy/{}", iam::OPERATOR_ACCESS_POLICY);
    let gateway_role = role(iam::OPERATOR_ACCESS_SERVICE);
    assert!(
        attachments
            .iter()
            .any(|(r, arn)| *r == gateway_role && arn.ends_with(&ssm)),
        "operator_ssm_access=true but the gateway role {gateway_role} lacks {}: {attachments:?}",
        iam::OPERATOR_ACCESS_POLICY
    );
    for service in [Service::Detector, Service::Reporter] {
        let r = role(service);
        assert!(
            !attachments.iter().any(|(role, _)| *role == r),
            "the {service:?} role {r} has a managed policy: {attachments:?}"
        );
    }
    let gateway_sg = text(
        resource(
            resources,
            "module.gateway.module.service.aws_security_group.this",
        ),
        "id",
    );
    let endpoints_sg = resource(
        resources,
        "module.gateway.aws_security_group.ssm_endpoints[0]",
    );
    let ingress = endpoints_sg
        .get("ingress")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        !ingress.is_empty(),
        "the Session Manager endpoints admit nothing"
    );
    for rule in &ingress {
        assert_eq!(
            (
                rule.get("from_port").and_then(Value::as_u64),
                rule.get("to_port").and_then(Value::as_u64)
            ),
            (Some(443), Some(443)),
            "{rule}"
        );
        assert_eq!(texts(rule, "security_groups"), [gateway_sg], "{rule}");
        for k in ["cidr_blocks", "ipv6_cidr_blocks", "prefix_list_ids"] {
            assert!(
                texts(rule, k).is_empty(),
                "the Session Manager endpoints admit {k}: {rule}"
            );
        }
    }
    let mut services: Vec<String> = of_type(resources, "aws_vpc_endpoint")
        .into_iter()
        .filter(|(_, v)| texts(v, "security_group_ids") == [text(endpoints_sg, "id")])
        .map(|(_, v)| {
            text(v, "service_name")
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    services.sort();
    assert_eq!(services, ["ec2messages", "ssm", "ssmmessages"]);
    say(&format!(
        "deployment: operator access: {} on the gateway role only; ssm, ssmmessages and ec2messages endpoints admit the gateways' group alone (no address range); groups {:?}",
        iam::OPERATOR_ACCESS_POLICY,
        stack.group_names.values().collect::<Vec<_>>()
    ));
}

/// A metric on the dashboard: namespace, name, dimensions, and the
/// horizontal annotations of the widget that shows it.
type Shown = (String, String, BTreeMap<String, String>, Vec<f64>);

/// The dashboard exists under the `dashboard_name` output and shows the
/// queue, its age and the dead letters, BacklogPerInstance with the scaling
/// target drawn on it, in-service and desired capacity of each group, the
/// webhook load balancer's answers and latency, and the detection time.
fn check_dashboard(state: &Value, resources: &[(String, String, String, Value)], stack: &Stack) {
    let dashboard = resource(resources, "module.monitoring.aws_cloudwatch_dashboard.this");
    let name = text(dashboard, "dashboard_name");
    assert_eq!(
        state
            .pointer("/values/outputs/dashboard_name/value")
            .and_then(Value::as_str),
        Some(name),
        "the dashboard_name output names the dashboard"
    );
    let body: Value = serde_json::from_str(text(dashboard, "dashboard_body"))
        .expect("the dashboard body is JSON");
    let mut shown: Vec<Shown> = Vec::new();
    for widget in body
        .get("widgets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let properties = &widget["properties"];
        let lines: Vec<f64> = properties
            .pointer("/annotations/horizontal")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("value").and_then(Value::as_f64))
            .collect();
        for metric in properties
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let parts: Vec<&str> = metric
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                parts.len() >= 2 && parts.len().is_multiple_of(2),
                "a metric line: {metric}"
            );
            let dims = parts[2..]
                .chunks(2)
                .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
                .collect();
            shown.push((
                parts[0].to_owned(),
                parts[1].to_owned(),
                dims,
                lines.clone(),
            ));
        }
    }
    let find = |namespace: &str, metric: &str, dim: (&str, &str)| {
        shown
            .iter()
            .find(|(n, m, d, _)| {
                n == namespace && m == metric && d.get(dim.0).map(String::as_str) == Some(dim.1)
            })
            .unwrap_or_else(|| {
                panic!("the dashboard does not show {namespace}/{metric} for {dim:?}: {shown:#?}")
            })
    };
    let name_of = |address: &str, key: &str| text(resource(resources, address), key).to_owned();
    let queue = name_of("module.storage.aws_sqs_queue.jobs", "name");
    let dlq = name_of("module.storage.aws_sqs_queue.dlq", "name");
    let alb = name_of("module.alb.aws_lb.this", "arn_suffix");
    find(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        ("QueueName", &queue),
    );
    find(
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        ("QueueName", &queue),
    );
    find(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        ("QueueName", &dlq),
    );
    let detectors = &stack.group_names[&Service::Detector];
    let backlog = find(
        "Polybot",
        "BacklogPerInstance",
        ("AutoScalingGroupName", detectors),
    );
    assert!(
        backlog.3.contains(&stack.target_backlog),
        "BacklogPerInstance is drawn without its target {} ({:?})",
        stack.target_backlog,
        backlog.3
    );
    for group in stack.group_names.values() {
        for metric in ["GroupInServiceInstances", "GroupDesiredCapacity"] {
            find("AWS/AutoScaling", metric, ("AutoScalingGroupName", group));
        }
    }
    for metric in [
        "HTTPCode_Target_2XX_Count",
        "HTTPCode_Target_4XX_Count",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
    ] {
        find("AWS/ApplicationELB", metric, ("LoadBalancer", &alb));
    }
    find("Polybot", "ProcessingSeconds", ("Service", "detector"));
    say(&format!(
        "deployment: dashboard {name} (the dashboard_name output): {} metrics, BacklogPerInstance against its target {}",
        shown.len(),
        stack.target_backlog
    ));
}

/// Every alarm's description links to its own section of docs/RUNBOOK.md
/// (`<runbook_url>#alarm-<name without the prefix>`), which exists; the
/// target 4xx and detector-at-maximum alarms are among them.
fn check_alarms_link_the_runbook(resources: &[(String, String, String, Value)], root: &Path) {
    let runbook = std::fs::read_to_string(root.join("docs/RUNBOOK.md")).expect("docs/RUNBOOK.md");
    let anchors = runbook::heading_anchors(&runbook);
    assert!(
        runbook::duplicate_headings(&runbook).is_empty(),
        "docs/RUNBOOK.md repeats headings (their anchors get numbered): {:?}",
        runbook::duplicate_headings(&runbook)
    );
    let alarms = of_type(resources, "aws_cloudwatch_metric_alarm");
    let mut names = BTreeSet::new();
    for (address, alarm) in &alarms {
        let name = text(alarm, "alarm_name");
        let description = text(alarm, "alarm_description");
        let anchor =
            runbook::linked_anchor(description, APPLIED_RUNBOOK_URL).unwrap_or_else(|| {
                panic!("{address} ({name}) does not link to {APPLIED_RUNBOOK_URL}: {description:?}")
            });
        let short = name.split_once('-').map_or(name, |(_, rest)| rest);
        assert_eq!(
            anchor,
            format!("alarm-{short}"),
            "{address} links to another alarm's section"
        );
        assert!(
            anchors.contains(anchor),
            "{address} links to #{anchor}, which is no heading of docs/RUNBOOK.md (add \"### Alarm: {short}\")"
        );
        names.insert(short.to_owned());
    }
    let alarm = |short: &str| {
        alarms
            .iter()
            .find(|(_, a)| text(a, "alarm_name").ends_with(&format!("-{short}")))
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no alarm {short}: {names:?}"))
    };
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or_default();
    let four = alarm("webhook-4xx");
    assert_eq!(text(four, "metric_name"), "HTTPCode_Target_4XX_Count");
    assert_eq!(
        text(four, "comparison_operator"),
        "GreaterThanOrEqualToThreshold"
    );
    assert!(
        n(four, "threshold") >= 1.0 && n(four, "period") * n(four, "evaluation_periods") <= 300.0
    );
    let max = n(
        resource(
            resources,
            "module.detector.module.service.aws_autoscaling_group.this",
        ),
        "max_size",
    );
    let at_max = alarm("detector-group-at-maximum");
    assert_eq!(text(at_max, "metric_name"), "GroupInServiceInstances");
    assert_eq!(
        n(at_max, "threshold"),
        max,
        "the alarm fires at the group's maximum"
    );
    assert_eq!(
        text(at_max, "comparison_operator"),
        "GreaterThanOrEqualToThreshold"
    );
    assert_eq!(
        text(at_max, "statistic"),
        "Minimum",
        "at the maximum the whole time"
    );
    assert!(n(at_max, "period") * n(at_max, "evaluation_periods") >= 900.0);
    assert!(alarms.len() >= 8, "{names:?}");
    say(&format!(
        "deployment: {} alarms, each linked to its section of docs/RUNBOOK.md: {names:?}",
        alarms.len()
    ));
}

/// Both load balancers send traffic only to ready gateways (`/readyz`);
/// replacing an instance follows liveness: the group uses EC2 health and
/// the instance's watcher of the container's HEALTHCHECK (`/healthz`), so
/// a gateway that is alive but cannot serve leaves the target groups
/// without being replaced in a loop.
fn check_readiness_at_the_load_balancers(resources: &[(String, String, String, Value)]) {
    for address in [
        "module.alb.aws_lb_target_group.gateway",
        "module.gateway.aws_lb_target_group.results",
    ] {
        let path = resource(resources, address)
            .pointer("/health_check/0/path")
            .and_then(Value::as_str);
        assert_eq!(path, Some("/readyz"), "{address} checks {path:?}");
    }
    let group = resource(
        resources,
        "module.gateway.module.service.aws_autoscaling_group.this",
    );
    assert_eq!(text(group, "health_check_type"), "EC2");
    let template = resource(
        resources,
        "module.gateway.module.service.aws_launch_template.this",
    );
    let script = base64::engine::general_purpose::STANDARD
        .decode(text(template, "user_data"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .expect("the gateway's user data");
    assert!(
        script.contains("polybot-health") && script.contains("set-instance-health"),
        "the gateway group uses EC2 health, so the instance must watch its container's HEALTHCHECK"
    );
    let docker = Dockerfile::read(&workspace_root().join("docker/gateway.Dockerfile"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        docker
            .healthcheck
            .as_ref()
            .is_some_and(|c| c.iter().any(|a| a.ends_with("/healthz"))),
        "the gateway's HEALTHCHECK (liveness) probes /healthz: {:?}",
        docker.healthcheck
    );
    say(
        "deployment: both load balancers check /readyz; the gateway group replaces on liveness (/healthz) only",
    );
}

/// The detector decodes untrusted files: it reads only the Results tokens'
/// secret (the gateway both), writes only result keys, uses the stack's key
/// only through S3, DynamoDB and Secrets Manager, and its security group
/// opens nothing to the internet (the default `detector_internet_egress =
/// false`): HTTPS to the VPC's endpoints and the Results port only.
fn check_detector_least_privilege(resources: &[(String, String, String, Value)], stack: &Stack) {
    use polybot_domain::{ChatId, ObjectKey, PredictionId};
    let policy = |service: Service| {
        iam::allow_statements(&stack.policies[&service])
            .unwrap_or_else(|e| panic!("{service:?}'s policy: {e}"))
    };
    let detector = policy(Service::Detector);
    let gateway = policy(Service::Gateway);
    let read = "secretsmanager:GetSecretValue";
    assert!(iam::allows(&detector, read, &stack.results_secret_arn));
    assert!(
        !iam::allows(&detector, read, &stack.secret_arn),
        "a detector may read the Telegram secret (the bot and operator tokens)"
    );
    assert!(iam::allows(&gateway, read, &stack.results_secret_arn));
    assert!(iam::allows(&gateway, read, &stack.secret_arn));
    let env = |service: Service, key: &str| stack.user_data[&service].env.get(key).cloned();
    assert_eq!(
        env(Service::Detector, "POLYBOT_RESULTS_SECRET_ID"),
        Some(stack.results_secret_arn.clone())
    );
    assert_eq!(env(Service::Detector, "POLYBOT_TELEGRAM_SECRET_ID"), None);
    assert_eq!(
        env(Service::Gateway, "POLYBOT_RESULTS_SECRET_ID"),
        Some(stack.results_secret_arn.clone())
    );
    assert_eq!(
        env(Service::Gateway, "POLYBOT_TELEGRAM_SECRET_ID"),
        Some(stack.secret_arn.clone())
    );

    let object = |key: &ObjectKey| format!("{}/{key}", stack.bucket_arn);
    let (chat, id) = (ChatId(1243002838), PredictionId::new());
    assert!(
        !iam::allows(
            &detector,
            "s3:PutObject",
            &object(&ObjectKey::original(chat, id, "jpg"))
        ),
        "a detector may overwrite an original photo"
    );
    assert!(!iam::allows(
        &detector,
        "s3:PutObject",
        &format!("{}/anything", stack.bucket_arn)
    ));
    for key in [
        ObjectKey::predicted(chat, id),
        ObjectKey::predicted_full(chat, id),
        ObjectKey::filtered(chat, id, "png"),
        ObjectKey::key_frame(chat, id, 1),
        ObjectKey::crop(chat, id, 2),
        ObjectKey::album_item(chat, id, 3, "jpg"),
    ] {
        assert!(
            iam::allows(&detector, "s3:PutObject", &object(&key)),
            "a detector may not write {key}"
        );
    }
    for s in detector
        .iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("kms:")))
    {
        let via = s
            .condition("kms:ViaService")
            .map(|(_, v)| v.to_vec())
            .unwrap_or_default();
        assert!(
            !via.is_empty()
                && via.iter().all(|v| ["s3.", "dynamodb.", "secretsmanager."]
                    .iter()
                    .any(|p| v.starts_with(p))),
            "statement {:?} lets a detector use the stack's key outside S3, DynamoDB and Secrets Manager: {via:?}",
            s.sid
        );
    }

    let sg = resource(
        resources,
        "module.detector.module.service.aws_security_group.this",
    );
    let sg_id = text(sg, "id");
    let vpc_cidr = text(
        resource(resources, "module.network.aws_vpc.this"),
        "cidr_block",
    );
    let mut egress: Vec<Value> = sg
        .get("egress")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    egress.extend(
        of_type(resources, "aws_security_group_rule")
            .into_iter()
            .filter(|(_, v)| text(v, "type") == "egress" && text(v, "security_group_id") == sg_id)
            .map(|(_, v)| v.clone()),
    );
    assert!(
        !egress.is_empty(),
        "the detectors' group has no egress rule"
    );
    let mut to_prefix_lists = false;
    for rule in &egress {
        let cidrs = [texts(rule, "cidr_blocks"), texts(rule, "ipv6_cidr_blocks")].concat();
        assert!(
            cidrs.iter().all(|c| c == vpc_cidr),
            "the detectors' group sends traffic outside the VPC ({cidrs:?}): {rule}"
        );
        let port = rule.get("from_port").and_then(Value::as_u64);
        assert!(
            port == Some(443) || port == Some(RESULTS_PORT),
            "the detectors' group opens port {port:?}: {rule}"
        );
        to_prefix_lists |= port == Some(443) && !texts(rule, "prefix_list_ids").is_empty();
    }
    assert!(
        to_prefix_lists,
        "no HTTPS to the S3 and DynamoDB gateway endpoints: {egress:#?}"
    );
    say(&format!(
        "deployment: detector: reads only the Results secret, writes only result keys, uses the key only through S3, DynamoDB and Secrets Manager; {} egress rules, none beyond the VPC ({vpc_cidr}) and the gateway endpoints",
        egress.len()
    ));
}

/// `(region, path)` of every `region.<region>.tfvars`, sorted.
fn region_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .expect("terraform/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let region = name
                .strip_prefix("region.")?
                .strip_suffix(".tfvars")?
                .to_owned();
            Some((region, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned()
}

/// The public hosted zone the configuration looks up (it must exist before
/// a deploy; here moto's Route 53 gets it).
fn create_public_zone(endpoint: &str, zone: &str) {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>{zone}</Name><CallerReference>deploy-test-{zone}</CallerReference></CreateHostedZoneRequest>"#
    );
    let out = Command::new("curl")
        .args(["-sf", "-X", "POST", &format!("{endpoint}/2013-04-01/hostedzone")])
        .args([
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0",
            "-H",
            "Content-Type: application/xml",
            "--data-binary",
            &body,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "creating the hosted zone {zone} in moto failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("curl: {e}"),
    }
}

/// What the apply created that the test uses.
struct Stack {
    user_data: BTreeMap<Service, UserData>,
    policies: BTreeMap<Service, String>,
    group_arns: BTreeMap<Service, String>,
    group_names: BTreeMap<Service, String>,
    log_group_arns: BTreeMap<Service, String>,
    repository_arns: BTreeMap<Service, String>,
    bucket_arn: String,
    queue_arn: String,
    dlq_arn: String,
    table_arn: String,
    secret_arn: String,
    results_secret_arn: String,
    kms_key_arn: String,
    target_backlog: f64,
}

impl Stack {
    fn from_state(resources: &[(String, String, String, Value)]) -> Self {
        fn values<'a>(
            resources: &'a [(String, String, String, Value)],
            address: &str,
        ) -> &'a Value {
            &resources
                .iter()
                .find(|r| r.0 == address)
                .unwrap_or_else(|| panic!("{address} is not in the state"))
                .3
        }
        let s = |address: &str, key: &str| -> String {
            values(resources, address)
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{address}.{key} is not a string in the state"))
                .to_owned()
        };
        let mut stack = Stack {
            user_data: BTreeMap::new(),
            policies: BTreeMap::new(),
            group_arns: BTreeMap::new(),
            group_names: BTreeMap::new(),
            log_group_arns: BTreeMap::new(),
            repository_arns: BTreeMap::new(),
            bucket_arn: s("module.storage.aws_s3_bucket.images", "arn"),
            queue_arn: s("module.storage.aws_sqs_queue.jobs", "arn"),
            dlq_arn: s("module.storage.aws_sqs_queue.dlq", "arn"),
            table_arn: s("module.storage.aws_dynamodb_table.predictions", "arn"),
            secret_arn: s("module.storage.aws_secretsmanager_secret.telegram", "arn"),
            results_secret_arn: s("module.storage.aws_secretsmanager_secret.results", "arn"),
            kms_key_arn: s("module.storage.aws_kms_key.this", "arn"),
            target_backlog: values(
                resources,
                "module.detector.aws_autoscaling_policy.backlog_per_instance",
            )
            .pointer("/target_tracking_configuration/0/target_value")
            .and_then(Value::as_f64)
            .expect("the detector policy's target value"),
        };
        for service in Service::ALL {
            let m = format!("module.{}.module.service", service.name());
            let ud =
                user_data_from_base64(&s(&format!("{m}.aws_launch_template.this"), "user_data"))
                    .unwrap_or_else(|e| panic!("{service:?}'s user data: {e}"));
            assert_eq!(ud.container, service.name());
            stack.user_data.insert(service, ud);
            stack.policies.insert(
                service,
                s(&format!("{m}.aws_iam_role_policy.this"), "policy"),
            );
            stack.group_arns.insert(
                service,
                s(&format!("{m}.aws_autoscaling_group.this"), "arn"),
            );
            stack.group_names.insert(
                service,
                s(&format!("{m}.aws_autoscaling_group.this"), "name"),
            );
            stack.log_group_arns.insert(
                service,
                s(&format!("{m}.aws_cloudwatch_log_group.this"), "arn"),
            );
            stack.repository_arns.insert(
                service,
                s(
                    &format!(
                        "module.storage.aws_ecr_repository.service[\"{}\"]",
                        service.name()
                    ),
                    "arn",
                ),
            );
        }
        stack
    }

    /// ARNs the resource kind stands for, in this stack: a row needs all of
    /// them, a grant is used when it matches one.
    fn arns(&self, service: Service, r: Resource) -> Vec<String> {
        match r {
            Resource::ResultObjects => iam::RESULT_FOLDERS
                .iter()
                .map(|folder| format!("{}/1243002838/{folder}/photo.jpg", self.bucket_arn))
                .collect(),
            other => vec![self.arn(service, other)],
        }
    }

    /// An ARN the resource kind stands for, in this stack.
    fn arn(&self, service: Service, r: Resource) -> String {
        let log_group = self.log_group_arns[&service].trim_end_matches(":*");
        match r {
            Resource::Bucket => self.bucket_arn.clone(),
            Resource::Objects => format!("{}/1243002838/original/photo.jpg", self.bucket_arn),
            Resource::ResultObjects => self.arns(service, r).remove(0),
            Resource::Queue => self.queue_arn.clone(),
            Resource::DeadLetterQueue => self.dlq_arn.clone(),
            Resource::Table => self.table_arn.clone(),
            Resource::TableIndexes => format!("{}/index/chat_id-time-index", self.table_arn),
            Resource::TelegramSecret => self.secret_arn.clone(),
            Resource::ResultsSecret => self.results_secret_arn.clone(),
            Resource::DataKey => self.kms_key_arn.clone(),
            Resource::DetectorGroup => self.group_arns[&Service::Detector].clone(),
            Resource::OwnGroup => self.group_arns[&service].clone(),
            Resource::OwnLogStreams => {
                format!("{log_group}:log-stream:{}/i-0123456789", service.name())
            }
            Resource::OwnRepository => self.repository_arns[&service].clone(),
            Resource::Any => "*".to_owned(),
        }
    }
}

/// Every row of the IAM table is granted by the service's applied role
/// policy, and every grant is needed by some row.
fn check_grants(stack: &Stack) {
    let mut missing = Vec::new();
    let mut unneeded = Vec::new();
    for service in Service::ALL {
        let statements = iam::allow_statements(&stack.policies[&service])
            .unwrap_or_else(|e| panic!("{service:?}'s policy: {e}"));
        let needs = iam::needs(service);
        for n in &needs {
            for arn in stack.arns(service, n.resource) {
                if !iam::allows(&statements, n.action, &arn) {
                    missing.push(format!(
                        "{}: {} on {arn} (needed by {}: {})",
                        service.name(),
                        n.action,
                        n.api,
                        n.site
                    ));
                }
            }
        }
        for st in &statements {
            for action in &st.actions {
                for resource in &st.resources {
                    let used = needs.iter().any(|n| {
                        iam::glob(action, n.action, true)
                            && stack
                                .arns(service, n.resource)
                                .iter()
                                .any(|arn| iam::glob(resource, arn, false))
                    });
                    if !used {
                        unneeded.push(format!(
                            "{}: {action} on {resource} (statement {:?})",
                            service.name(),
                            st.sid
                        ));
                    }
                }
            }
        }
    }
    say(&format!(
        "deployment: IAM: {} table rows checked against the applied role policies; {} missing, {} grants no row needs{}",
        Service::ALL
            .iter()
            .map(|s| iam::needs(*s).len())
            .sum::<usize>(),
        missing.len(),
        unneeded.len(),
        if unneeded.is_empty() {
            String::new()
        } else {
            format!(": {unneeded:?}")
        }
    ));
    assert!(
        missing.is_empty(),
        "the Terraform role policies do not grant what the code calls (moto does not enforce IAM; AWS would refuse):\n{}",
        missing.join("\n")
    );
    assert!(
        unneeded.is_empty(),
        "grants that no row of the IAM table (crates/deploy/src/iam.rs) needs: remove them from terraform/ or add the call to the table:\n{}",
        unneeded.join("\n")
    );
}

/// The reporter may read the table's backlog item and nothing else of the
/// table: every statement of its role that grants `dynamodb:GetItem` is
/// limited by `dynamodb:LeadingKeys` to the key the code uses, and its
/// `kms:Decrypt` to calls through DynamoDB.
fn check_reporter_reads_only_the_backlog_item(stack: &Stack) {
    let statements = iam::allow_statements(&stack.policies[&Service::Reporter])
        .unwrap_or_else(|e| panic!("the reporter's policy: {e}"));
    let granting = |action: &str| -> Vec<&iam::Statement> {
        statements
            .iter()
            .filter(|s| s.actions.iter().any(|a| iam::glob(a, action, true)))
            .collect()
    };
    let reads = granting("dynamodb:GetItem");
    assert!(
        !reads.is_empty(),
        "the reporter may not read the backlog item"
    );
    for s in reads {
        assert_eq!(
            s.condition("dynamodb:LeadingKeys"),
            Some((
                "ForAllValues:StringEquals",
                [polybot_storage::aws::BACKLOG_PK.to_owned()].as_slice()
            )),
            "statement {:?} lets the reporter read more of the table than the backlog item \
             (or names another key than polybot_storage::aws::BACKLOG_PK)",
            s.sid
        );
    }
    for s in granting("kms:Decrypt") {
        let via = s
            .condition("kms:ViaService")
            .map(|(_, values)| values.to_vec())
            .unwrap_or_default();
        assert!(
            via.len() == 1 && via[0].starts_with("dynamodb."),
            "statement {:?} lets the reporter decrypt with the stack's key outside DynamoDB: {via:?}",
            s.sid
        );
    }
    say("deployment: IAM: the reporter reads only the table's backlog item");
}

/// Erasing a chat (/forget) is the gateway's alone. The reporter's role
/// may not list or delete any object version or delete table items; the
/// detectors' may delete table items neither, and may list and delete
/// versions only of the results they write (every key the code builds for
/// them, `polybot_domain::ObjectKey`), never of an original or under a
/// whole chat's folder. The gateway lists versions only under a chat's
/// folder, never the whole bucket.
fn check_only_the_gateway_erases(stack: &Stack) {
    use polybot_domain::{ChatId, ObjectKey, PredictionId};
    let policy = |service: Service| {
        iam::allow_statements(&stack.policies[&service])
            .unwrap_or_else(|e| panic!("{service:?}'s policy: {e}"))
    };
    let object = |key: &ObjectKey| format!("{}/{key}", stack.bucket_arn);
    // The prefixes a statement's ListBucketVersions admits: None when it has
    // no s3:prefix condition (every prefix, the whole bucket).
    let list_prefixes = |statements: &[iam::Statement]| -> Vec<Option<Vec<String>>> {
        statements
            .iter()
            .filter(|s| {
                s.actions
                    .iter()
                    .any(|a| iam::glob(a, "s3:ListBucketVersions", true))
                    && s.resources
                        .iter()
                        .any(|r| iam::glob(r, &stack.bucket_arn, false))
            })
            .map(|s| match s.condition("s3:prefix") {
                Some(("StringLike" | "StringEquals", values)) => Some(values.to_vec()),
                _ => None,
            })
            .collect()
    };
    let lists = |statements: &[iam::Statement], prefix: &str| {
        list_prefixes(statements).iter().any(|admits| match admits {
            None => true,
            Some(patterns) => patterns.iter().any(|p| iam::glob(p, prefix, false)),
        })
    };
    let chats = [ChatId(1243002838), ChatId(-1001234567890)];

    let reporter = policy(Service::Reporter);
    let detector = policy(Service::Detector);
    for (service, statements) in [
        (Service::Reporter, &reporter),
        (Service::Detector, &detector),
    ] {
        for action in ["dynamodb:DeleteItem", "dynamodb:BatchWriteItem"] {
            assert!(
                !iam::allows(statements, action, &stack.table_arn),
                "the {service:?} may {action} on the table: erasing a chat is the gateway's alone"
            );
        }
        for chat in chats {
            let original = ObjectKey::original(chat, PredictionId::new(), "jpg");
            for action in ["s3:DeleteObject", "s3:DeleteObjectVersion"] {
                assert!(
                    !iam::allows(statements, action, &object(&original)),
                    "the {service:?} may {action} an original photo ({original}): only the gateway erases"
                );
            }
            for prefix in [String::new(), format!("{chat}/"), original.to_string()] {
                assert!(
                    !lists(statements, &prefix),
                    "the {service:?} may list object versions under {prefix:?}: only the gateway erases a chat"
                );
            }
        }
    }
    assert!(
        list_prefixes(&reporter).is_empty(),
        "the reporter may list object versions"
    );
    for chat in chats {
        let id = PredictionId::new();
        for key in [
            ObjectKey::predicted(chat, id),
            ObjectKey::predicted_full(chat, id),
            ObjectKey::filtered(chat, id, "png"),
            ObjectKey::key_frame(chat, id, 3),
            ObjectKey::crop(chat, id, 9),
            ObjectKey::album_item(chat, id, 2, "jpg"),
        ] {
            let folder = key.as_str().split('/').nth(1).unwrap_or_default();
            assert!(
                iam::RESULT_FOLDERS.contains(&folder),
                "{key}: a result folder the IAM table's RESULT_FOLDERS does not list"
            );
            for action in ["s3:DeleteObject", "s3:DeleteObjectVersion"] {
                assert!(
                    iam::allows(&detector, action, &object(&key)),
                    "a detector may not {action} its result {key} when its chat was erased mid-job"
                );
            }
            assert!(
                lists(&detector, key.as_str()),
                "a detector may not list the versions of its result {key}"
            );
        }
    }

    let gateway = policy(Service::Gateway);
    let gateway_lists = list_prefixes(&gateway);
    assert!(
        !gateway_lists.is_empty(),
        "the gateway may not list a chat's object versions"
    );
    assert!(
        gateway_lists.iter().all(Option::is_some),
        "the gateway may list every object version in the bucket: limit it with s3:prefix"
    );
    for chat in chats {
        assert!(
            lists(&gateway, &format!("{chat}/")),
            "the gateway may not list the versions under the chat folder {chat}/"
        );
    }
    assert!(
        !lists(&gateway, ""),
        "the gateway may list the whole bucket's versions"
    );
    say(
        "deployment: IAM: only the gateway erases a chat; detectors may delete their own results' versions, no original",
    );
}

/// The one retention clock: the applied stack got `retention_days =
/// APPLIED_RETENTION_DAYS`; every object of the images bucket expires
/// after that many days, a version that stops being current (an expired
/// one included) goes one day later, the shortest S3 allows, so nothing
/// outlives the clock by more than a day (the noncurrent days count from
/// when a version stopped being current: the clock there would double it),
/// lone delete markers go too, and every service's container gets the same
/// `POLYBOT_RETENTION_DAYS` for its records (and the gateway's /privacy).
fn check_one_retention_clock(resources: &[(String, String, String, Value)], stack: &Stack) {
    let address = "module.storage.aws_s3_bucket_lifecycle_configuration.images";
    let lifecycle = &resources
        .iter()
        .find(|r| r.0 == address)
        .unwrap_or_else(|| panic!("{address} is not in the state"))
        .3;
    let enabled = |r: &Value| r.get("status").and_then(Value::as_str) == Some("Enabled");
    // A rule for the whole bucket: no prefix, tag or size in its filter.
    let whole_bucket = |r: &Value| {
        let empty = |v: Option<&Value>| match v {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        empty(r.get("prefix"))
            && r.get("filter")
                .and_then(Value::as_array)
                .is_none_or(|filters| {
                    filters.iter().all(|f| {
                        [
                            "prefix",
                            "tag",
                            "and",
                            "object_size_greater_than",
                            "object_size_less_than",
                        ]
                        .iter()
                        .all(|k| empty(f.get(*k)))
                    })
                })
    };
    // The enabled rules for every object of the bucket.
    let rules: Vec<&Value> = lifecycle
        .get("rule")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| enabled(r) && whole_bucket(r))
        .collect();
    let number = |r: &Value, pointer: &str| {
        r.pointer(pointer)
            .and_then(Value::as_u64)
            .filter(|d| *d > 0)
    };
    let expiring: Vec<u64> = rules
        .iter()
        .filter_map(|r| number(r, "/expiration/0/days"))
        .collect();
    assert_eq!(
        expiring,
        [APPLIED_RETENTION_DAYS],
        "the images bucket's objects must expire after retention_days ({APPLIED_RETENTION_DAYS}), by one rule for the whole bucket: {rules:#?}"
    );
    let noncurrent: Vec<u64> = rules
        .iter()
        .filter_map(|r| number(r, "/noncurrent_version_expiration/0/noncurrent_days"))
        .collect();
    assert_eq!(
        noncurrent,
        [1],
        "the versioned bucket must remove a version one day after it stops being current (an image expired at \
         retention_days, or a result deleted without its version id, would otherwise outlive the clock): {rules:#?}"
    );
    assert!(
        rules.iter().any(|r| {
            r.pointer("/expiration/0/expired_object_delete_marker")
                .and_then(Value::as_bool)
                == Some(true)
        }),
        "lone delete markers (their keys name the chat) must be removed: {rules:#?}"
    );
    let versioning = resources
        .iter()
        .find(|r| r.0 == "module.storage.aws_s3_bucket_versioning.images")
        .and_then(|r| r.3.pointer("/versioning_configuration/0/status"))
        .and_then(Value::as_str);
    assert_eq!(
        versioning,
        Some("Enabled"),
        "the images bucket is versioned (the rules above assume it)"
    );
    for service in Service::ALL {
        assert_eq!(
            stack.user_data[&service]
                .env
                .get("POLYBOT_RETENTION_DAYS")
                .map(String::as_str),
            Some(APPLIED_RETENTION_DAYS.to_string().as_str()),
            "the {service:?}'s container must get POLYBOT_RETENTION_DAYS = retention_days"
        );
        // The dashboard's app widgets read the services' EMF lines.
        assert_eq!(
            stack.user_data[&service]
                .env
                .get("POLYBOT_METRICS_EMF")
                .map(String::as_str),
            Some("true"),
            "the {service:?}'s container must write its metrics as EMF lines"
        );
    }
    say(&format!(
        "deployment: one retention clock: objects expire after {APPLIED_RETENTION_DAYS} days, a noncurrent version a day \
         after, lone delete markers go, and every service gets POLYBOT_RETENTION_DAYS={APPLIED_RETENTION_DAYS}"
    ));
}

/// Every recorded call of a service's binary has a row in the IAM table.
fn check_observed_calls(observed: &BTreeMap<Service, BTreeSet<String>>) {
    let mut unlisted = Vec::new();
    for (service, apis) in observed {
        let needs = iam::needs(*service);
        for api in apis {
            if !needs.iter().any(|n| n.api == api.as_str()) {
                unlisted.push(format!("{}: {api}", service.name()));
            }
        }
    }
    say(&format!(
        "deployment: IAM: calls the binaries made on the applied stack: {}",
        observed
            .iter()
            .map(|(s, apis)| format!("{} {:?}", s.name(), apis))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    for service in Service::ALL {
        assert!(
            observed.get(&service).is_some_and(|a| !a.is_empty()),
            "moto recorded no call by the {service:?} (access key {})",
            access_key(service)
        );
    }
    assert!(
        unlisted.is_empty(),
        "AWS calls the binaries make that the IAM table (crates/deploy/src/iam.rs) does not list:\n{}",
        unlisted.join("\n")
    );
}

// ------------------------------------------------------------ round trip

/// A service process, killed when dropped (also when the test fails).
struct Running {
    name: &'static str,
    child: Child,
    http: String,
    env: BTreeMap<String, String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("addr").to_string()
}

/// `$var` if set, else `file` in the assets folder (`cargo xtask setup`).
fn asset(var: Option<&str>, file: &str) -> String {
    var.and_then(|v| std::env::var(v).ok()).unwrap_or_else(|| {
        let dir = std::env::var("POLYBOT_ASSETS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".cache/assets"));
        dir.join(file).display().to_string()
    })
}

/// The environment the service's container gets: its Dockerfile's `ENV`,
/// then the user data's `--env-file` over it (what `docker run` does),
/// then `replace` (keys that must already be there) and `add` (keys that
/// must not).
fn container_env(
    docker: &Dockerfile,
    ud: &UserData,
    replace: &[(&str, String)],
    add: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut env = docker.env.clone();
    env.extend(ud.env.clone());
    for (k, v) in replace {
        assert!(
            env.contains_key(*k),
            "{}: {k} is not in the user data or the Dockerfile, so the test would invent it",
            ud.container
        );
        env.insert((*k).to_owned(), v.clone());
    }
    for (k, v) in add {
        assert!(
            !env.contains_key(*k),
            "{}: {k} is already set by the deployment ({:?}); the test must not override it",
            ud.container,
            env[*k]
        );
        env.insert((*k).to_owned(), v.clone());
    }
    env
}

/// Starts `service` exactly as its container would run: the Dockerfile's
/// entry point, the user data's arguments, `env` and nothing else.
fn start(
    service: Service,
    docker: &Dockerfile,
    ud: &UserData,
    env: &BTreeMap<String, String>,
    logs: &Path,
) -> Running {
    let program = binaries::binary(&docker.entrypoint[0]).unwrap_or_else(|e| panic!("{e}"));
    let log =
        std::fs::File::create(logs.join(format!("{}.log", service.name()))).expect("log file");
    let child = Command::new(program)
        .args(&docker.entrypoint[1..])
        .args(&ud.command)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {service:?}: {e}"));
    Running {
        name: service.name(),
        child,
        http: env["POLYBOT_HTTP_LISTEN"].clone(),
        env: env.clone(),
    }
}

/// Waits until `GET http://<addr><path>` answers 200, or fails with the
/// service's log.
async fn wait_ok(running: &mut Running, path: &str, logs: &Path, timeout: Duration) {
    let url = format!("http://{}{path}", running.http);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!(
                "{} exited ({status}) before {url} answered 200; its log:\n{}",
                running.name,
                read_log(logs, running.name)
            );
        }
        assert!(
            start.elapsed() < timeout,
            "{url} did not answer 200 within {timeout:?}; {}'s log:\n{}",
            running.name,
            read_log(logs, running.name)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn read_log(logs: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn port_of(addr_or_url: &str) -> String {
    addr_or_url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// Runs the photo through the applied stack and returns the AWS calls moto
/// recorded per service (as `service:Operation`).
async fn round_trip(
    moto: &MotoServer,
    stack: &Stack,
    root: &Path,
    scratch: &Path,
) -> BTreeMap<Service, BTreeSet<String>> {
    let logs = scratch.join("logs");
    std::fs::create_dir_all(&logs).expect("logs folder");
    // moto keeps each region apart: talk to the one the stack was applied in.
    let region = stack
        .secret_arn
        .split(':')
        .nth(3)
        .expect("an ARN names its region")
        .to_owned();
    let sdk = moto
        .sdk_config()
        .await
        .to_builder()
        .region(aws_config::Region::new(region))
        .build();
    let http = reqwest::Client::new();
    let moto_api = |action: &str| format!("{}/moto-api/recorder/{action}", moto.endpoint());

    let emulator = Emulator::start("127.0.0.1:0")
        .await
        .expect("the Telegram emulator starts");
    // The operator's step after the first apply (docs/RUNBOOK.md): the bot's
    // token, the webhook secret and the operator token go into the Telegram
    // secret, the Results token into its own secret, the one detectors may
    // read. The round trip needs the gateway to verify the detector's token
    // from that secret (POLYBOT_RESULTS_SECRET_ID), so it proves the layout.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    secrets
        .put_secret_value()
        .secret_id(&stack.secret_arn)
        .secret_string(
            serde_json::json!({
                "telegram_token": emulator.token(),
                "webhook_secret": "deployment-test-webhook-secret-0123456789abcdef",
                "operator_token": "deployment-test-operator-token-0123456789abcdef",
            })
            .to_string(),
        )
        .send()
        .await
        .expect("PutSecretValue on the applied Telegram secret");
    secrets
        .put_secret_value()
        .secret_id(&stack.results_secret_arn)
        .secret_string(
            serde_json::json!({
                "results_token": "deployment-test-results-token-0123456789abcdef",
            })
            .to_string(),
        )
        .send()
        .await
        .expect("PutSecretValue on the applied Results secret");

    let docker = |s: Service| {
        Dockerfile::read(&root.join(format!("docker/{}.Dockerfile", s.name())))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (gw_docker, det_docker, rep_docker) = (
        docker(Service::Gateway),
        docker(Service::Detector),
        docker(Service::Reporter),
    );
    let ud = |s: Service| &stack.user_data[&s];
    // The container's own HTTP port (health checks) must be the one its
    // Dockerfile HEALTHCHECK probes.
    for (s, d) in [
        (Service::Gateway, &gw_docker),
        (Service::Detector, &det_docker),
        (Service::Reporter, &rep_docker),
    ] {
        let listen = ud(s)
            .env
            .get("POLYBOT_HTTP_LISTEN")
            .or(d.env.get("POLYBOT_HTTP_LISTEN"))
            .unwrap_or_else(|| panic!("{s:?}: no POLYBOT_HTTP_LISTEN"));
        let probe = d
            .healthcheck
            .as_ref()
            .unwrap_or_else(|| panic!("{s:?}: no HEALTHCHECK"));
        let url = probe
            .iter()
            .find(|a| a.starts_with("http://"))
            .expect("a URL in HEALTHCHECK");
        assert_eq!(
            port_of(listen),
            port_of(url),
            "{s:?}: the HEALTHCHECK probes {url} but the service listens on {listen}"
        );
    }

    // What exists only inside AWS is pointed at the local peers; every
    // other setting is the deployment's own.
    let aws = |s: Service| {
        vec![
            ("AWS_ENDPOINT_URL", moto.endpoint().to_owned()),
            ("AWS_ACCESS_KEY_ID", access_key(s)),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            // No instance metadata here; the instance role's credentials
            // are the access key above.
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    };
    let data_dir = scratch.join("data").display().to_string();
    let gw_http = free_addr();
    let gw_grpc = free_addr();
    let mut gw_add = aws(Service::Gateway);
    // api.telegram.org → the emulator.
    gw_add.push(("TELEGRAM_API_URL", emulator.base_url()));
    let gw_env = container_env(
        &gw_docker,
        ud(Service::Gateway),
        &[
            ("POLYBOT_HTTP_LISTEN", gw_http.clone()),
            ("POLYBOT_GRPC_LISTEN", gw_grpc.clone()),
            // The ALB's HTTPS name → the gateway itself, for the emulator's
            // webhook deliveries.
            ("POLYBOT_PUBLIC_URL", format!("http://{gw_http}")),
            ("POLYBOT_DATA_DIR", data_dir.clone()),
        ],
        &gw_add,
    );
    let det_env = container_env(
        &det_docker,
        ud(Service::Detector),
        &[
            ("POLYBOT_HTTP_LISTEN", free_addr()),
            // results.<private zone>:50051 (the internal NLB) → the gateway.
            ("POLYBOT_RESULTS_URL", format!("http://{gw_grpc}")),
            // The image's copies of the model and runtime → the test assets.
            (
                "POLYBOT_MODEL",
                asset(Some("POLYBOT_MODEL"), "yolo11n.onnx"),
            ),
            (
                "POLYBOT_MODEL_INT8",
                asset(Some("POLYBOT_MODEL_INT8"), "yolo11n-int8.onnx"),
            ),
            (
                "ORT_DYLIB_PATH",
                asset(Some("ORT_DYLIB_PATH"), "libonnxruntime.so.1.32.0"),
            ),
            // The image's Debian ffmpeg (videos) → the one `cargo xtask
            // setup` fetched.
            ("POLYBOT_FFMPEG", asset(Some("POLYBOT_FFMPEG"), "ffmpeg")),
            ("POLYBOT_DATA_DIR", data_dir.clone()),
        ],
        &aws(Service::Detector),
    );
    let rep_env = container_env(
        &rep_docker,
        ud(Service::Reporter),
        &[
            ("POLYBOT_HTTP_LISTEN", free_addr()),
            ("POLYBOT_DATA_DIR", data_dir.clone()),
        ],
        &aws(Service::Reporter),
    );

    // Record every AWS call from here on.
    for action in ["reset-recording", "start-recording"] {
        http.post(moto_api(action))
            .send()
            .await
            .expect("moto recorder");
    }

    let mut gateway = start(
        Service::Gateway,
        &gw_docker,
        ud(Service::Gateway),
        &gw_env,
        &logs,
    );
    wait_ok(&mut gateway, "/readyz", &logs, Duration::from_secs(60)).await;

    // Scale from zero: no detector in service, a photo waits; the value the
    // reporter publishes must exceed the scaling policy's target.
    let detectors = &stack.group_names[&Service::Detector];
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(detectors)
        .min_size(0)
        .desired_capacity(0)
        .send()
        .await
        .expect("scale the detector group to zero");
    let client = emulator.client();
    let chat = 1243002838;
    let photo = std::fs::read(asset(None, "bus.jpg")).expect("bus.jpg: run `cargo xtask setup`");
    let sent = client
        .send_user_photo(chat, photo, &UserMessageOptions::default())
        .await
        .expect("the user sends a photo");
    let first = client
        .wait_for_messages(chat, 1, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no acknowledgement: {e}; gateway log:\n{}",
                read_log(&logs, "gateway")
            )
        });
    assert_eq!(first[0].kind, SentKind::Text, "{first:#?}");
    assert!(
        !first[0]
            .text
            .as_deref()
            .unwrap_or_default()
            .starts_with("Sorry"),
        "the photo was refused, not queued: {first:#?}\ngateway log:\n{}",
        read_log(&logs, "gateway")
    );
    let mut once =
        std::process::Command::new(binaries::binary(&rep_docker.entrypoint[0]).expect("reporter"));
    once.args(&ud(Service::Reporter).command)
        .arg("--once")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(&rep_env);
    let start_wait = Instant::now();
    let (published, last_report) = loop {
        let out = once.output().expect("reporter --once");
        assert!(
            out.status.success(),
            "reporter --once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // The summary line; the EMF line after it (POLYBOT_METRICS_EMF, as
        // Terraform sets it) is for CloudWatch.
        let value: f64 = stdout
            .split("BacklogPerInstance=")
            .nth(1)
            .and_then(|v| v.lines().next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no BacklogPerInstance in {stdout:?}"));
        // moto terminates the group's instances asynchronously.
        if stdout.contains("instances=0") || start_wait.elapsed() > Duration::from_secs(30) {
            assert!(
                stdout.contains("instances=0"),
                "the detector group did not reach zero: {stdout}"
            );
            break (value, stdout);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    say(&format!(
        "deployment: scale from zero: a waiting job and no detector → BacklogPerInstance {published} > target {}",
        stack.target_backlog
    ));
    assert!(
        published > stack.target_backlog,
        "with jobs waiting and no detector the reporter publishes {published} ({last_report}), not above the target \
         {}: target tracking would never scale out from zero",
        stack.target_backlog
    );

    let mut reporter = start(
        Service::Reporter,
        &rep_docker,
        ud(Service::Reporter),
        &rep_env,
        &logs,
    );
    wait_ok(&mut reporter, "/readyz", &logs, Duration::from_secs(60)).await;
    let mut detector = start(
        Service::Detector,
        &det_docker,
        ud(Service::Detector),
        &det_env,
        &logs,
    );
    wait_ok(&mut detector, "/healthz", &logs, Duration::from_secs(120)).await;

    let replies = client
        .wait_for_messages(chat, 2, Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no annotated reply: {e}\ngateway log:\n{}\ndetector log:\n{}",
                read_log(&logs, "gateway"),
                read_log(&logs, "detector")
            )
        });
    let reply = &replies[1];
    assert_eq!(reply.kind, SentKind::Photo, "{replies:#?}");
    let caption = reply.caption.as_deref().unwrap_or_default();
    assert!(
        caption.contains("bus") && caption.contains("person"),
        "{replies:#?}"
    );
    assert_eq!(
        reply.reply_to_message_id, sent.message_id,
        "the reply quotes the photo"
    );
    let file = reply.file.as_ref().expect("the reply carries a photo");
    let annotated = client
        .file_bytes(&file.file_id)
        .await
        .expect("the annotated photo");
    assert!(
        annotated.starts_with(&[0xFF, 0xD8]),
        "the annotated photo is a JPEG"
    );
    say("deployment: photo round trip on the applied stack: the user got the annotated photo");
    assert_eq!(
        ud(Service::Detector)
            .env
            .get("POLYBOT_PRECISION")
            .map(String::as_str),
        Some(APPLIED_PRECISION),
        "the user data passes detector_precision on"
    );
    let metrics = http
        .get(format!("http://{}/metrics", detector.http))
        .send()
        .await
        .expect("detector /metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains(&format!(
            "polybot_detector_model_info{{precision=\"{APPLIED_PRECISION}\"}} 1"
        )),
        "the detector did not load the image's INT8 model:\n{metrics}"
    );
    say("deployment: the detector runs the image's INT8 model, as detector_precision asked");

    // Every image's HEALTHCHECK, as written (port aside) and in the
    // container's environment, passes against its running binary.
    for (running, d) in [
        (&gateway, &gw_docker),
        (&detector, &det_docker),
        (&reporter, &rep_docker),
    ] {
        let probe = d.healthcheck.clone().expect("HEALTHCHECK");
        let port = port_of(&running.http);
        let args: Vec<String> = probe[1..]
            .iter()
            .map(|a| {
                if a.starts_with("http://") {
                    a.replacen(&format!(":{}", port_of(a)), &format!(":{port}"), 1)
                } else {
                    a.clone()
                }
            })
            .collect();
        let status = Command::new(binaries::binary(&probe[0]).expect("binary"))
            .args(&args)
            .env_clear()
            .envs(&running.env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("healthcheck");
        assert!(
            status.success(),
            "{}: HEALTHCHECK {args:?} failed ({status})",
            running.name
        );
    }

    drop((gateway, detector, reporter));
    emulator.shutdown().await;
    http.post(moto_api("stop-recording"))
        .send()
        .await
        .expect("moto recorder");
    let recording = http
        .get(moto_api("download-recording"))
        .send()
        .await
        .expect("moto recording")
        .text()
        .await
        .expect("recording text");
    calls_by_service(&recording)
}

/// `service:Operation` per access key in moto's recording.
fn calls_by_service(recording: &str) -> BTreeMap<Service, BTreeSet<String>> {
    let mut out: BTreeMap<Service, BTreeSet<String>> = BTreeMap::new();
    for line in recording.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).expect("a recorded request");
        let header = |name: &str| -> Option<String> {
            entry
                .get("headers")?
                .as_object()?
                .iter()
                .find_map(|(k, v)| {
                    k.eq_ignore_ascii_case(name)
                        .then(|| v.as_str().unwrap_or_default().to_owned())
                })
        };
        let Some(auth) = header("Authorization") else {
            continue;
        };
        let Some(credential) = auth.split("Credential=").nth(1) else {
            continue;
        };
        let parts: Vec<&str> = credential.split('/').collect();
        let (key, signing) = (parts[0], parts.get(3).copied().unwrap_or_default());
        let Some(service) = Service::ALL.into_iter().find(|s| access_key(*s) == key) else {
            continue;
        };
        let body = entry
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let body = if entry.get("body_encoded").and_then(Value::as_bool) == Some(true) {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            body.to_owned()
        };
        let api = if let Some(target) = header("X-Amz-Target") {
            let (prefix, op) = target.split_once('.').unwrap_or(("", target.as_str()));
            let iam_prefix = match prefix {
                "AmazonSQS" => "sqs",
                p if p.starts_with("DynamoDB") => "dynamodb",
                "secretsmanager" => "secretsmanager",
                other => other,
            };
            format!("{iam_prefix}:{op}")
        } else if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            let iam_prefix = if signing == "monitoring" {
                "cloudwatch"
            } else {
                signing
            };
            format!("{iam_prefix}:{action}")
        } else if signing == "s3" {
            let method = entry
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let url = entry.get("url").and_then(Value::as_str).unwrap_or_default();
            let path = url
                .split("://")
                .nth(1)
                .and_then(|r| r.find('/').map(|i| &r[i..]))
                .unwrap_or(url);
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let segments = path
                .trim_matches('/')
                .split('/')
                .filter(|s| !s.is_empty())
                .count();
            let has = |name: &str| {
                query
                    .split('&')
                    .any(|kv| kv.split('=').next() == Some(name))
            };
            let op = match (method, segments) {
                ("HEAD", 1) => "HeadBucket",
                ("GET", 1) if has("versions") => "ListObjectVersions",
                ("GET", 1) if query.contains("list-type=2") => "ListObjectsV2",
                ("GET", 1) => "ListObjects",
                ("POST", 1) if has("delete") => "DeleteObjects",
                ("HEAD", _) => "HeadObject",
                ("GET", _) => "GetObject",
                ("PUT", _) => "PutObject",
                ("DELETE", _) => "DeleteObject",
                _ => "Unknown",
            };
            format!("s3:{op}")
        } else {
            format!("{signing}:unknown")
        };
        out.entry(service).or_default().insert(api);
    }
    out
}
