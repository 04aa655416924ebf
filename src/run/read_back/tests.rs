use super::*;
use crate::api::policy_list::{parse_page, PER_PAGE};
use crate::api::request::Method;
use crate::config::parse_config;
use crate::params::problems::Report;
use crate::run::prepare::{prepare, Prepared};
use crate::run::scripted::{status, Scripted};
use serde_json::{json, Value};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const C: &str = "cccccccc-0000-4000-8000-000000000003";
/// When the batch was sent, on the wall clock (2023-11-14T22:13:20Z).
const SENT_MS: u64 = 1_700_000_000_000;
const NEW: &str = "2023-11-14T22:13:21.5Z";
const OLD: &str = "2020-01-01T00:00:00Z";

fn batch(input: Value) -> Prepared {
    let config = json!({"api_token": "tok-SECRET-77aa01", "account_id": ACCOUNT});
    prepare(&config.to_string(), &input.to_string()).unwrap()
}

fn stored(id: &str, pattern: &str, created_at: &str) -> Value {
    json!({"id": id, "pattern": pattern, "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true, "comments": null, "created_at": created_at})
}

fn snapshot(policies: Vec<Value>) -> Snapshot {
    let raw = RawValue::from_string(Value::Array(policies).to_string()).unwrap();
    Snapshot::new(parse_page(Some(&raw), None).unwrap().policies)
}

fn post(pattern: &str) -> Value {
    json!({"pattern": pattern, "pattern_type": "EMAIL", "is_regex": false, "is_exempt_recipient": false,
        "is_trusted_sender": true, "is_acceptable_sender": false, "verify_sender": true})
}

fn applied(j: Judgement) -> Value {
    match j {
        Judgement::Applied { result } => serde_json::to_value(&result).unwrap(),
        other => panic!("expected applied, got {other:?}"),
    }
}

#[test]
fn deletes_are_applied_when_gone_and_not_when_there() {
    let p = batch(json!({"deletes": [{"id": A}, {"id": B.to_uppercase()}]}));
    let other = stored(C, "x@y.example", OLD);
    let result = applied(judge(p.batch(), SENT_MS, &snapshot(vec![other.clone()])));
    // The ids as the workflow sent them, in its letter case.
    assert_eq!(
        result["deletes"],
        json!([{"id": A}, {"id": B.to_uppercase()}])
    );
    assert_eq!(result["posts"], json!([]));
    let before = snapshot(vec![
        stored(A, "a@x.example", OLD),
        stored(B, "b@x.example", OLD),
        other,
    ]);
    assert_eq!(judge(p.batch(), SENT_MS, &before), Judgement::NotVisible);
}

#[test]
fn half_of_a_batch_visible_is_undetermined() {
    let p = batch(json!({"deletes": [{"id": A}, {"id": B}]}));
    let j = judge(
        p.batch(),
        SENT_MS,
        &snapshot(vec![stored(B, "b@x.example", OLD)]),
    );
    assert!(
        matches!(j, Judgement::Undetermined(ref why) if why.contains("1 of the batch's items show")),
        "{j:?}"
    );
}

#[test]
fn puts_and_patches_are_applied_when_the_fields_sent_show() {
    let mut put = post("New@X.example");
    put["id"] = json!(A);
    put["comments"] = json!("why");
    let p = batch(
        json!({"puts": [put], "patches": [{"id": B, "verify_sender": false, "comments": null}]}),
    );
    let mut a_after = stored(A, "new@x.example", OLD);
    a_after["comments"] = json!("why");
    let mut b_after = stored(B, "b@x.example", OLD);
    b_after["verify_sender"] = json!(false);
    b_after["comments"] = json!("");
    let result = applied(judge(
        p.batch(),
        SENT_MS,
        &snapshot(vec![a_after.clone(), b_after.clone()]),
    ));
    assert_eq!(result["puts"], json!([a_after]));
    assert_eq!(result["patches"], json!([b_after]));

    // Neither shows: not applied.
    let before = vec![
        stored(A, "old@x.example", OLD),
        stored(B, "b@x.example", OLD),
    ];
    assert_eq!(
        judge(p.batch(), SENT_MS, &snapshot(before)),
        Judgement::NotVisible
    );

    // A patched policy that is gone: someone else was at work.
    let j = judge(p.batch(), SENT_MS, &snapshot(vec![a_after]));
    assert!(
        matches!(j, Judgement::Undetermined(ref why) if why.contains(B)),
        "{j:?}"
    );
}

#[test]
fn a_regex_pattern_is_compared_exactly() {
    let p =
        batch(json!({"patches": [{"id": A, "pattern": "^A.*@x\\.example$", "is_regex": true}]}));
    let mut stored_a = stored(A, "^a.*@x\\.example$", OLD);
    stored_a["is_regex"] = json!(true);
    assert_eq!(
        judge(p.batch(), SENT_MS, &snapshot(vec![stored_a])),
        Judgement::NotVisible
    );
}

#[test]
fn posts_are_applied_when_new_policies_with_their_fields_exist() {
    let p = batch(json!({"posts": [post("one@x.example"), post("two@x.example")]}));
    let after = snapshot(vec![
        stored(A, "two@x.example", NEW),
        stored(B, "ONE@x.example", NEW),
        stored(C, "one@x.example", OLD),
    ]);
    let result = applied(judge(p.batch(), SENT_MS, &after));
    let ids: Vec<&str> = result["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    // In the order of the posts, the old look-alike left out.
    assert_eq!(ids, [B, A]);
}

#[test]
fn a_post_matching_only_an_older_policy_is_not_visible() {
    let p = batch(json!({"posts": [post("one@x.example")]}));
    // Created more than two minutes before the batch was sent.
    let old_enough = "2023-11-14T22:11:19.999Z";
    assert_eq!(
        judge(
            p.batch(),
            SENT_MS,
            &snapshot(vec![stored(A, "one@x.example", old_enough)])
        ),
        Judgement::NotVisible
    );
    // Less than two minutes before: it may be a previous run's, or the
    // batch's own a clock apart. No one can say.
    for close in ["2023-11-14T22:11:20Z", "2023-11-14T22:13:19.999Z"] {
        let j = judge(
            p.batch(),
            SENT_MS,
            &snapshot(vec![stored(A, "one@x.example", close)]),
        );
        assert!(matches!(j, Judgement::Undetermined(_)), "{close}: {j:?}");
    }
    // From the moment the batch was sent it counts as the batch's.
    let at_once = "2023-11-14T22:13:20Z";
    assert!(matches!(
        judge(
            p.batch(),
            SENT_MS,
            &snapshot(vec![stored(A, "one@x.example", at_once)])
        ),
        Judgement::Applied { .. }
    ));
    // Different fields are a different policy.
    let mut trusted = stored(A, "one@x.example", NEW);
    trusted["is_trusted_sender"] = json!(false);
    assert_eq!(
        judge(p.batch(), SENT_MS, &snapshot(vec![trusted])),
        Judgement::NotVisible
    );
}

#[test]
fn posts_that_cannot_be_told_from_older_policies_are_undetermined() {
    let p = batch(json!({"posts": [post("one@x.example")]}));
    let mut undated = stored(A, "one@x.example", OLD);
    undated.as_object_mut().unwrap().remove("created_at");
    let j = judge(p.batch(), SENT_MS, &snapshot(vec![undated]));
    assert!(matches!(j, Judgement::Undetermined(_)), "{j:?}");

    // Two equal posts, one new policy: part of the batch is missing.
    let p = batch(json!({"posts": [post("one@x.example"), post("one@x.example")]}));
    let j = judge(
        p.batch(),
        SENT_MS,
        &snapshot(vec![stored(A, "one@x.example", NEW)]),
    );
    assert!(
        matches!(j, Judgement::Undetermined(ref why) if why.contains("1 of the 2")),
        "{j:?}"
    );
    let two = snapshot(vec![
        stored(A, "one@x.example", NEW),
        stored(B, "one@x.example", NEW),
    ]);
    assert!(matches!(
        judge(p.batch(), SENT_MS, &two),
        Judgement::Applied { .. }
    ));
}

#[test]
fn a_patch_that_changes_nothing_visible_leaves_the_rest_to_decide() {
    let p = batch(json!({"deletes": [{"id": B}], "patches": [{"id": A, "verify_sender": true}]}));
    // The patch shows (as it did before); the delete does not: mixed.
    let j = judge(
        p.batch(),
        SENT_MS,
        &snapshot(vec![
            stored(A, "a@x.example", OLD),
            stored(B, "b@x.example", OLD),
        ]),
    );
    assert!(matches!(j, Judgement::Undetermined(_)), "{j:?}");
}

fn list(policies: Vec<Value>) -> String {
    let total = policies.len();
    json!({"success": true, "errors": [], "messages": [], "result": policies,
        "result_info": {"page": 1, "per_page": PER_PAGE, "count": total, "total_count": total}})
    .to_string()
}

fn config() -> Config {
    parse_config(
        &json!({"api_token": "tok-SECRET-77aa01"}),
        &mut Report::default(),
    )
    .unwrap()
}

#[test]
fn nothing_visible_is_read_twice_a_pause_apart() {
    let p = batch(json!({"deletes": [{"id": A}]}));
    let there = || status(200, None, &list(vec![stored(A, "a@x.example", OLD)]));
    let mut t = Scripted::new(vec![there(), there()]);
    let v = verify(&config(), ACCOUNT, p.batch(), SENT_MS, &mut t, 60_000);
    assert_eq!(v, Verdict::NotVisible { reads: 2 });
    assert_eq!(t.slept, [PAUSE_MS]);
    assert!(t.requests.iter().all(|(m, _)| *m == Method::Get));
}

#[test]
fn a_batch_that_lands_between_the_reads_is_applied() {
    let p = batch(json!({"deletes": [{"id": A}]}));
    let mut t = Scripted::new(vec![
        status(200, None, &list(vec![stored(A, "a@x.example", OLD)])),
        status(200, None, &list(vec![])),
    ]);
    let v = verify(&config(), ACCOUNT, p.batch(), SENT_MS, &mut t, 60_000);
    assert!(matches!(v, Verdict::Applied { reads: 2, .. }), "{v:?}");
}

#[test]
fn a_read_that_fails_or_has_no_time_leaves_no_verdict() {
    let p = batch(json!({"deletes": [{"id": A}]}));
    let mut t = Scripted::new(vec![status(429, Some("300"), "")]);
    let v = verify(&config(), ACCOUNT, p.batch(), SENT_MS, &mut t, 60_000);
    assert!(
        matches!(v, Verdict::Incomplete { reads: 1, ref why, read_failure: Some(ref f) } if why.contains("429") && f.retry_after_ms.is_some()),
        "{v:?}"
    );

    // One read shows nothing, and the pause would pass the deadline.
    let mut t = Scripted::new(vec![status(
        200,
        None,
        &list(vec![stored(A, "a@x.example", OLD)]),
    )]);
    let v = verify(
        &config(),
        ACCOUNT,
        p.batch(),
        SENT_MS,
        &mut t,
        1_000 + PAUSE_MS,
    );
    assert!(
        matches!(v, Verdict::Incomplete { reads: 1, ref why, read_failure: None } if why.contains("no time")),
        "{v:?}"
    );
    assert!(t.slept.is_empty());
}

#[test]
fn the_reserve_is_a_quarter_at_most_ten_seconds() {
    assert_eq!(reserve_ms(30_000), 7_500);
    assert_eq!(reserve_ms(40_000), 10_000);
    assert_eq!(reserve_ms(600_000), 10_000);
    assert_eq!(reserve_ms(3), 0);
}
