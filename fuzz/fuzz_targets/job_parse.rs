//! Queue message bodies → `Job::parse`, as the detector worker and the
//! gateway's dead-letter sweeper read them. Nothing may panic; an accepted
//! job has a valid object key, is written back with the current schema
//! version, and survives a round trip through `to_json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polybot_domain::{JOB_SCHEMA_VERSION, Job, ObjectKey};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(job) = Job::parse(body) else {
        return;
    };
    assert!(ObjectKey::parse(job.original_key().as_str()).is_ok());
    let json = job.to_json();
    let version = format!("\"schema_version\":{JOB_SCHEMA_VERSION}");
    assert!(json.contains(&version), "written as the current version: {json}");
    let again = Job::parse(&json).expect("a parsed job's JSON parses again");
    assert_eq!(again, job, "the job survives a round trip");
});
