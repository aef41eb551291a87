//! The IAM table: every AWS call each service makes, and the IAM action
//! and resource each call needs. It is the single source of truth for the
//! services' permissions; `terraform/modules/*/main.tf` must grant what it
//! lists, and the deployment test checks both directions:
//!
//! - every row is granted by the service's role policy in the applied
//!   Terraform state (moto does not enforce IAM, so nothing else would
//!   notice a missing grant before a real deploy);
//! - every call the real binaries make during the photo round trip on the
//!   applied stack (recorded by moto) has a row here, so the table cannot
//!   silently fall behind the code;
//! - grants that no row needs are reported.
//!
//! Calls by the instance itself (user data: pulling the image, the log
//! driver, the drain and health scripts) are rows too, marked [`Caller::Host`].
//!
//! One grant is outside the inline policies the table is checked against:
//! the opt-in operator access ([`OPERATOR_ACCESS_POLICY`], an AWS managed
//! policy attached to the gateways' role alone).

use serde_json::Value;

/// A Polybot service, each with its own instance role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Gateway,
    Detector,
    Reporter,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Gateway, Service::Detector, Service::Reporter];

    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Detector => "detector",
            Service::Reporter => "reporter",
        }
    }
}

/// Who makes the call on the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The service's binary (the Rust code).
    Code,
    /// The instance's user data: Docker's ECR login and awslogs driver, the
    /// drain and health scripts.
    Host,
}

/// The resource a call acts on, resolved to an ARN per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The images bucket itself (HeadBucket).
    Bucket,
    /// Objects in the images bucket.
    Objects,
    /// Objects in the folders detectors write results to, under any chat's
    /// folder (`<chat_id>/<folder>/...`, each of [`RESULT_FOLDERS`]); not
    /// the originals.
    ResultObjects,
    /// The jobs queue.
    Queue,
    /// The dead-letter queue.
    DeadLetterQueue,
    /// The predictions table.
    Table,
    /// The predictions table's indexes.
    TableIndexes,
    /// The Telegram secret (bot token, webhook secret, operator token).
    TelegramSecret,
    /// The Results tokens' own secret, the only one a detector may read.
    ResultsSecret,
    /// The stack's KMS key (SSE-KMS on the bucket, the table, the secret).
    DataKey,
    /// The detectors' Auto Scaling Group.
    DetectorGroup,
    /// The instance's own Auto Scaling Group.
    OwnGroup,
    /// Log streams in the service's own log group.
    OwnLogStreams,
    /// The service's own image repository.
    OwnRepository,
    /// Actions without resource-level permissions: `*`.
    Any,
}

/// One row: `service` calls `api` (the SDK operation, `service:Operation`),
/// which needs `action` on `resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub service: Service,
    pub caller: Caller,
    pub api: &'static str,
    pub action: &'static str,
    pub resource: Resource,
    /// Where in the code (or the user data) the call is made.
    pub site: &'static str,
}

const fn need(
    service: Service,
    caller: Caller,
    api: &'static str,
    action: &'static str,
    resource: Resource,
    site: &'static str,
) -> Need {
    Need {
        service,
        caller,
        api,
        action,
        resource,
        site,
    }
}

use Caller::{Code, Host};
use Resource::*;
use Service::{Detector, Gateway, Reporter};

const STORAGE_CHECK: &str =
    "polybot_storage::aws::connect_with (start-up) and Backends::check (/readyz)";

/// The folders detectors write their results to under each chat's folder
/// (`polybot_domain::ObjectKey`: the annotated photo and its full-size copy,
/// a clip's key frames, a filter's or an album's output, crops). Originals
/// (`<chat_id>/original/...`) are the gateway's. The deployment test checks
/// this list against the keys the code builds.
pub const RESULT_FOLDERS: &[&str] = &["predicted", "filtered", "crops", "album"];

const FORGET: &str = "DynamoTable::erase_chat (/forget): the chat's claims, notices, answers, albums, deferred updates and settings, 25 delete requests at a time";
const FORGET_VERSIONS: &str = "S3ObjectStore::erase_chat (/forget): every version and delete marker under <chat_id>/ (s3:prefix)";
const FORGET_DELETE: &str =
    "S3ObjectStore::erase_chat (/forget): each version and delete marker by its version id";
const ERASED_MID_JOB: &str = "S3ObjectStore::erase: the worker deletes every version of the results it has just stored when their chat was erased (/forget) while the job ran (s3:prefix: result folders only)";
/// AWS's DeleteObjects reference: "To delete an object from a bucket, you
/// must always specify the s3:DeleteObject permission", version ids or not.
const DELETE_OBJECTS_ALWAYS: &str = "S3ObjectStore::erase(_chat): DeleteObjects needs s3:DeleteObject always (AWS's API reference), also when each entry names its version id";

/// The table.
pub const TABLE: &[Need] = &[
    // ------------------------------------------------------------ gateway
    need(
        Gateway,
        Code,
        "s3:HeadBucket",
        "s3:ListBucket",
        Bucket,
        STORAGE_CHECK,
    ),
    need(
        Gateway,
        Code,
        "s3:PutObject",
        "s3:PutObject",
        Objects,
        "S3ObjectStore::put: the original photo",
    ),
    need(
        Gateway,
        Code,
        "s3:PutObject",
        "kms:GenerateDataKey",
        DataKey,
        "S3ObjectStore::put: SSE-KMS with the stack's key",
    ),
    need(
        Gateway,
        Code,
        "s3:GetObject",
        "s3:GetObject",
        Objects,
        "S3ObjectStore::get: the annotated photo for the reply",
    ),
    need(
        Gateway,
        Code,
        "s3:GetObject",
        "kms:Decrypt",
        DataKey,
        "S3ObjectStore::get: SSE-KMS objects",
    ),
    need(
        Gateway,
        Code,
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        Queue,
        STORAGE_CHECK,
    ),
    need(
        Gateway,
        Code,
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        DeadLetterQueue,
        STORAGE_CHECK,
    ),
    need(
        Gateway,
        Code,
        "sqs:SendMessage",
        "sqs:SendMessage",
        Queue,
        "SqsJobQueue::send: one job per photo",
    ),
    need(
        Gateway,
        Code,
        "sqs:ReceiveMessage",
        "sqs:ReceiveMessage",
        DeadLetterQueue,
        "the dead-letter sweeper (gateway loops)",
    ),
    need(
        Gateway,
        Code,
        "sqs:DeleteMessage",
        "sqs:DeleteMessage",
        DeadLetterQueue,
        "the dead-letter sweeper, after answering the user",
    ),
    need(
        Gateway,
        Code,
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibility",
        DeadLetterQueue,
        "the dead-letter sweeper, releasing a job it could not answer",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:DescribeTable",
        "dynamodb:DescribeTable",
        Table,
        STORAGE_CHECK,
    ),
    need(
        Gateway,
        Code,
        "dynamodb:PutItem",
        "dynamodb:PutItem",
        Table,
        "DynamoTable::create: the prediction record",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:GetItem",
        "dynamodb:GetItem",
        Table,
        "DynamoTable::get/notice: Results GetPrediction, the notice to edit",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:UpdateItem",
        "dynamodb:UpdateItem",
        Table,
        "DynamoTable::claim/finish/save_failure/attach_notice/close_notice/add_cost/set_answer_file: leases, results, notices, a queued clip's cost in the backlog item, the answer's file (only if the prediction still exists)",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:DeleteItem",
        "dynamodb:DeleteItem",
        Table,
        "DynamoTable::release: a lease given back after a failure; DynamoTable::erase_chat (/forget): each prediction, one by one (ALL_OLD: an exact count)",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:Query",
        "dynamodb:Query",
        TableIndexes,
        "DynamoTable::list_by_chat/pending_albums: the chat_id-time index (unfinished albums under chat 0); DynamoTable::erase_chat (/forget): the chat's predictions, its other items (chat_id <chat>.5) and its pending items under chat 0",
    ),
    need(
        Gateway,
        Code,
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchWriteItem",
        Table,
        FORGET,
    ),
    need(
        Gateway,
        Code,
        "s3:ListObjectVersions",
        "s3:ListBucketVersions",
        Bucket,
        FORGET_VERSIONS,
    ),
    need(
        Gateway,
        Code,
        "s3:DeleteObjects",
        "s3:DeleteObjectVersion",
        Objects,
        FORGET_DELETE,
    ),
    need(
        Gateway,
        Code,
        "s3:DeleteObjects",
        "s3:DeleteObject",
        Objects,
        DELETE_OBJECTS_ALWAYS,
    ),
    need(
        Gateway,
        Code,
        "secretsmanager:GetSecretValue",
        "secretsmanager:GetSecretValue",
        TelegramSecret,
        "polybot_storage::aws::telegram_secrets at start-up",
    ),
    need(
        Gateway,
        Code,
        "secretsmanager:GetSecretValue",
        "secretsmanager:GetSecretValue",
        ResultsSecret,
        "gateway::cli (POLYBOT_RESULTS_SECRET_ID): polybot_storage::aws::secrets::results_secrets at start-up, the tokens detectors present",
    ),
    need(
        Gateway,
        Code,
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        DataKey,
        "the secrets are encrypted with the stack's key",
    ),
    need(
        Gateway,
        Host,
        "autoscaling:SetInstanceHealth",
        "autoscaling:SetInstanceHealth",
        OwnGroup,
        "user data: polybot-health, when the container stays unhealthy (the load balancers check readiness, which does not replace)",
    ),
    // ----------------------------------------------------------- detector
    need(
        Detector,
        Code,
        "secretsmanager:GetSecretValue",
        "secretsmanager:GetSecretValue",
        ResultsSecret,
        "detector::cli (POLYBOT_RESULTS_SECRET_ID): the results token at start-up, from the Results tokens' own secret",
    ),
    need(
        Detector,
        Code,
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        DataKey,
        "the secret is encrypted with the stack's key (kms:ViaService)",
    ),
    need(
        Detector,
        Code,
        "s3:HeadBucket",
        "s3:ListBucket",
        Bucket,
        STORAGE_CHECK,
    ),
    need(
        Detector,
        Code,
        "s3:GetObject",
        "s3:GetObject",
        Objects,
        "the worker reads the original photo",
    ),
    need(
        Detector,
        Code,
        "s3:GetObject",
        "kms:Decrypt",
        DataKey,
        "SSE-KMS objects",
    ),
    need(
        Detector,
        Code,
        "s3:PutObject",
        "s3:PutObject",
        ResultObjects,
        "the worker stores its results (annotated photo, key frames, filter output, crops, album items), never an original",
    ),
    need(
        Detector,
        Code,
        "s3:PutObject",
        "kms:GenerateDataKey",
        DataKey,
        "SSE-KMS with the stack's key",
    ),
    need(
        Detector,
        Code,
        "s3:ListObjectVersions",
        "s3:ListBucketVersions",
        Bucket,
        ERASED_MID_JOB,
    ),
    need(
        Detector,
        Code,
        "s3:DeleteObjects",
        "s3:DeleteObjectVersion",
        ResultObjects,
        ERASED_MID_JOB,
    ),
    need(
        Detector,
        Code,
        "s3:DeleteObjects",
        "s3:DeleteObject",
        ResultObjects,
        DELETE_OBJECTS_ALWAYS,
    ),
    need(
        Detector,
        Code,
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        Queue,
        STORAGE_CHECK,
    ),
    need(
        Detector,
        Code,
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        DeadLetterQueue,
        STORAGE_CHECK,
    ),
    need(
        Detector,
        Code,
        "sqs:ReceiveMessage",
        "sqs:ReceiveMessage",
        Queue,
        "SqsJobQueue::receive: the worker loop",
    ),
    need(
        Detector,
        Code,
        "sqs:DeleteMessage",
        "sqs:DeleteMessage",
        Queue,
        "SqsJobQueue::delete: a finished job",
    ),
    need(
        Detector,
        Code,
        "sqs:ChangeMessageVisibility",
        "sqs:ChangeMessageVisibility",
        Queue,
        "SqsJobQueue::set_visibility: heartbeats and releases",
    ),
    need(
        Detector,
        Code,
        "dynamodb:DescribeTable",
        "dynamodb:DescribeTable",
        Table,
        STORAGE_CHECK,
    ),
    need(
        Detector,
        Code,
        "dynamodb:UpdateItem",
        "dynamodb:UpdateItem",
        Table,
        "DynamoTable::save_summary/publish_model_classes/remove_cost: the detections, the model's classes, a finished clip's cost out of the backlog item",
    ),
    need(
        Detector,
        Code,
        "dynamodb:GetItem",
        "dynamodb:GetItem",
        Table,
        "DynamoTable::save_summary/get: after a failed condition, whether the record exists; a crops job's detection",
    ),
    need(
        Detector,
        Host,
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:CompleteLifecycleAction",
        OwnGroup,
        "user data: polybot-drain, after stopping the container",
    ),
    need(
        Detector,
        Host,
        "autoscaling:SetInstanceHealth",
        "autoscaling:SetInstanceHealth",
        OwnGroup,
        "user data: polybot-health, when the container stays unhealthy",
    ),
    // ----------------------------------------------------------- reporter
    need(
        Reporter,
        Code,
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        Queue,
        "SqsJobQueue::verify and stats: the backlog",
    ),
    need(
        Reporter,
        Code,
        "dynamodb:GetItem",
        "dynamodb:GetItem",
        Table,
        "DynamoTable::extra_cost: the backlog item only (dynamodb:LeadingKeys)",
    ),
    need(
        Reporter,
        Code,
        "dynamodb:GetItem",
        "kms:Decrypt",
        DataKey,
        "the table is encrypted with the stack's key (kms:ViaService: through DynamoDB only)",
    ),
    need(
        Reporter,
        Code,
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingGroups",
        Any,
        "AsgInstanceCounter: InService detectors",
    ),
    need(
        Reporter,
        Code,
        "cloudwatch:PutMetricData",
        "cloudwatch:PutMetricData",
        Any,
        "CloudWatchSink: BacklogPerInstance",
    ),
    need(
        Reporter,
        Host,
        "autoscaling:SetInstanceHealth",
        "autoscaling:SetInstanceHealth",
        OwnGroup,
        "user data: polybot-health, when the container stays unhealthy",
    ),
];

/// The AWS managed policy that `operator_ssm_access` attaches, to the
/// gateways' role and no other: Session Manager's agent registers the
/// instance and carries the operators' port-forwarding sessions
/// (docs/RUNBOOK.md, "Reaching the gateway's gRPC"). Its grants are AWS's,
/// not rows of this table; the deployment test checks where it is attached.
pub const OPERATOR_ACCESS_POLICY: &str = "AmazonSSMManagedInstanceCore";

/// The only service whose role may get [`OPERATOR_ACCESS_POLICY`].
pub const OPERATOR_ACCESS_SERVICE: Service = Service::Gateway;

/// Rows every service has: the instance pulls its image and ships its logs.
pub const HOST_COMMON: &[(&str, Resource, &str)] = &[
    (
        "ecr:GetAuthorizationToken",
        Any,
        "user data: docker login to ECR",
    ),
    ("ecr:BatchGetImage", OwnRepository, "user data: docker pull"),
    (
        "ecr:GetDownloadUrlForLayer",
        OwnRepository,
        "user data: docker pull",
    ),
    (
        "ecr:BatchCheckLayerAvailability",
        OwnRepository,
        "user data: docker pull",
    ),
    ("logs:CreateLogStream", OwnLogStreams, "the awslogs driver"),
    ("logs:PutLogEvents", OwnLogStreams, "the awslogs driver"),
];

/// Every row for `service`, the common host rows included.
pub fn needs(service: Service) -> Vec<Need> {
    let mut rows: Vec<Need> = TABLE
        .iter()
        .copied()
        .filter(|n| n.service == service)
        .collect();
    rows.extend(HOST_COMMON.iter().map(|&(action, resource, site)| Need {
        service,
        caller: Host,
        api: action,
        action,
        resource,
        site,
    }));
    rows
}

/// `*` and `?` wildcards, as IAM matches actions (case-insensitively) and
/// resources.
pub fn glob(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    // Iterative wildcard match with backtracking to the last '*'.
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// One Allow statement of a policy document. Its conditions are read but
/// not evaluated by [`allows`] (they only narrow a grant: PutMetricData to
/// our namespace, the reporter's GetItem to the backlog item, its Decrypt
/// to DynamoDB); [`Statement::condition`] lets a test check one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// `(operator, key, values)`, e.g. `("StringEquals",
    /// "cloudwatch:namespace", ["Polybot"])`.
    pub conditions: Vec<(String, String, Vec<String>)>,
}

impl Statement {
    /// The values the statement's condition on `key` allows, and its
    /// operator; `None` if it has no condition on `key`.
    pub fn condition(&self, key: &str) -> Option<(&str, &[String])> {
        self.conditions
            .iter()
            .find(|(_, k, _)| k == key)
            .map(|(op, _, values)| (op.as_str(), values.as_slice()))
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The Allow statements of a policy document (JSON text). Deny statements
/// and NotAction/NotResource are rejected: our roles use none, and this
/// evaluator does not model them.
pub fn allow_statements(policy: &str) -> Result<Vec<Statement>, String> {
    let doc: Value =
        serde_json::from_str(policy).map_err(|e| format!("policy is not JSON: {e}"))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err("policy has no Statement".into()),
    };
    let mut out = Vec::new();
    for s in statements {
        if s.get("NotAction").is_some() || s.get("NotResource").is_some() {
            return Err(format!("NotAction/NotResource is not modelled: {s}"));
        }
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            return Err(format!("only Allow statements are modelled: {s}"));
        }
        let mut conditions = Vec::new();
        if let Some(Value::Object(operators)) = s.get("Condition") {
            for (op, keys) in operators {
                if let Value::Object(keys) = keys {
                    for (key, values) in keys {
                        conditions.push((op.clone(), key.clone(), strings(Some(values))));
                    }
                }
            }
        }
        out.push(Statement {
            sid: s
                .get("Sid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            actions: strings(s.get("Action")),
            resources: strings(s.get("Resource")),
            conditions,
        });
    }
    Ok(out)
}

/// Whether `statements` allow `action` on `resource`.
pub fn allows(statements: &[Statement], action: &str, resource: &str) -> bool {
    statements.iter().any(|s| {
        s.actions.iter().any(|a| glob(a, action, true))
            && s.resources.iter().any(|r| glob(r, resource, false))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_iam() {
        assert!(glob("s3:Get*", "s3:GetObject", true));
        assert!(glob("S3:getobject", "s3:GetObject", true));
        assert!(!glob("s3:Put*", "s3:GetObject", true));
        assert!(glob(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/1/original/x.jpg",
            false
        ));
        assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::b", false));
        assert!(glob(
            "arn:aws:autoscaling:r:1:autoScalingGroup:*:autoScalingGroupName/polybot-detector",
            "arn:aws:autoscaling:r:1:autoScalingGroup:abc-123:autoScalingGroupName/polybot-detector",
            false
        ));
        assert!(glob("*", "*", false));
        assert!(!glob("arn:aws:sqs:r:1:q", "*", false));
    }

    #[test]
    fn a_policy_allows_exactly_its_actions_on_its_resources() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"A","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::b/*"},
            {"Sid":"B","Effect":"Allow","Action":"s3:ListBucket","Resource":["arn:aws:s3:::b"]}]}"#;
        let s = allow_statements(policy).expect("parses");
        assert!(allows(&s, "s3:GetObject", "arn:aws:s3:::b/k"));
        assert!(allows(&s, "s3:ListBucket", "arn:aws:s3:::b"));
        assert!(!allows(&s, "s3:ListBucket", "arn:aws:s3:::b/k"));
        assert!(!allows(&s, "s3:DeleteObject", "arn:aws:s3:::b/k"));
        assert_eq!(s[0].condition("dynamodb:LeadingKeys"), None);
    }

    #[test]
    fn conditions_are_read_per_key() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"R","Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:r:1:table/t",
             "Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["backlog#costs"]},
                          "StringEquals":{"aws:RequestedRegion":"r"}}}]}"#;
        let s = allow_statements(policy).expect("parses");
        assert!(allows(
            &s,
            "dynamodb:GetItem",
            "arn:aws:dynamodb:r:1:table/t"
        ));
        assert_eq!(
            s[0].condition("dynamodb:LeadingKeys"),
            Some((
                "ForAllValues:StringEquals",
                ["backlog#costs".to_owned()].as_slice()
            ))
        );
        assert_eq!(
            s[0].condition("aws:RequestedRegion"),
            Some(("StringEquals", ["r".to_owned()].as_slice()))
        );
    }

    /// Actions that erase records of a chat: the gateway's alone.
    const ERASING_RECORDS: &[&str] = &["dynamodb:BatchWriteItem", "dynamodb:DeleteItem"];

    #[test]
    fn only_the_gateway_erases_and_detectors_delete_only_their_results() {
        for n in TABLE {
            if ERASING_RECORDS.contains(&n.action) {
                assert_eq!(n.service, Service::Gateway, "{n:?}");
            }
            if n.action.starts_with("s3:Delete") || n.action == "s3:ListBucketVersions" {
                assert_ne!(n.service, Service::Reporter, "{n:?}");
                if n.service == Service::Detector && n.action.starts_with("s3:Delete") {
                    assert_eq!(
                        n.resource,
                        Resource::ResultObjects,
                        "a detector may delete its results only: {n:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_detector_reads_only_the_results_secret_and_writes_only_results() {
        let detector = needs(Service::Detector);
        for n in &detector {
            assert_ne!(
                n.resource,
                Resource::TelegramSecret,
                "a detector decodes untrusted files: it may not read the bot token's secret: {n:?}"
            );
            if n.action == "s3:PutObject" || n.action.starts_with("s3:Delete") {
                assert_eq!(
                    n.resource,
                    Resource::ResultObjects,
                    "a detector may write its results only: {n:?}"
                );
            }
        }
        assert!(detector.iter().any(|n| {
            n.action == "secretsmanager:GetSecretValue" && n.resource == Resource::ResultsSecret
        }));
        // The gateways verify the detectors' token from the same secret.
        assert!(needs(Service::Gateway).iter().any(|n| {
            n.action == "secretsmanager:GetSecretValue" && n.resource == Resource::ResultsSecret
        }));
        assert_eq!(OPERATOR_ACCESS_SERVICE, Service::Gateway);
    }

    #[test]
    fn every_service_has_rows_and_every_row_names_its_site() {
        for service in Service::ALL {
            let rows = needs(service);
            assert!(rows.iter().any(|n| n.caller == Caller::Code), "{service:?}");
            for n in rows {
                assert!(!n.site.is_empty(), "{n:?}");
                assert!(n.action.contains(':') && n.api.contains(':'), "{n:?}");
            }
        }
    }
}
