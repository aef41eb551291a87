//! Queue message bodies → `Job::parse`, as the detector worker and the
//! gateway's dead-letter sweeper read them. Nothing may panic; an accepted
//! job has the supported schema version, a valid object key, and survives a
//! round trip through `to_json`.
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
    assert_eq!(job.schema_version, JOB_SCHEMA_VERSION);
    assert!(ObjectKey::parse(job.original_key.as_str()).is_ok());
    let again = Job::parse(&job.to_json()).expect("a parsed job's JSON parses again");
    assert_eq!(again, job, "the job survives a round trip");
});
