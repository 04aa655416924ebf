use super::*;
use crate::api::policy::PatternType;
use crate::api::policy_list::parse_page;
use crate::params::sync_spec::{Desired, DEFAULT_MAX_DELETES};
use proptest::prelude::*;
use serde_json::json;
use serde_json::value::RawValue;

fn policy(pattern: &str) -> Policy {
    Policy {
        pattern: pattern.into(),
        pattern_type: PatternType::Email,
        is_regex: false,
        is_exempt_recipient: false,
        is_trusted_sender: true,
        is_acceptable_sender: false,
        verify_sender: true,
        comments: None,
    }
}

fn desired(policies: Vec<Policy>) -> SyncSpec {
    SyncSpec {
        desired: policies
            .into_iter()
            .map(|policy| Desired { id: None, policy })
            .collect(),
        delete_unlisted: false,
        max_deletes: DEFAULT_MAX_DELETES,
        allow_deleting_most: false,
    }
}

fn uuid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// The account as the list reader gives it.
fn account(policies: &[(String, Policy)]) -> Snapshot {
    let items: Vec<Value> = policies
        .iter()
        .map(|(id, p)| {
            let mut v = serde_json::to_value(p).unwrap();
            v["id"] = json!(id);
            if v.get("comments").is_none() {
                v["comments"] = Value::Null;
            }
            v
        })
        .collect();
    let raw = RawValue::from_string(Value::Array(items).to_string()).unwrap();
    Snapshot::new(parse_page(Some(&raw), None).unwrap().policies)
}

#[test]
fn an_empty_account_gets_every_policy_posted() {
    let spec = desired(vec![policy("a@x.example"), policy("b@x.example")]);
    let plan = plan(&spec, &account(&[])).unwrap();
    assert_eq!(
        plan.posts,
        vec![policy("a@x.example"), policy("b@x.example")]
    );
    assert!(plan.changes.is_empty() && plan.deletes.is_empty());
    assert_eq!(plan.batches().len(), 1);
}

#[test]
fn the_same_list_again_is_nothing_to_do() {
    let existing = vec![
        (uuid(1), policy("a@x.example")),
        (uuid(2), policy("B@X.example")),
    ];
    // The second differs in letter case only: the same address.
    let spec = desired(vec![policy("a@x.example"), policy("b@x.example")]);
    let plan = plan(&spec, &account(&existing)).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(plan.unchanged, 2);
    assert!(plan.batches().is_empty());
}

#[test]
fn a_changed_policy_gets_a_patch_of_only_what_differs() {
    let existing = vec![(uuid(1), policy("a@x.example"))];
    let mut wanted = policy("a@x.example");
    wanted.verify_sender = false;
    wanted.comments = Some(Some("vendor".into()));
    let plan = plan(&desired(vec![wanted]), &account(&existing)).unwrap();
    assert_eq!(plan.changes.len(), 1);
    let change = &plan.changes[0];
    let body = serde_json::to_value(&change.patch).unwrap();
    assert_eq!(
        body,
        json!({"id": uuid(1), "verify_sender": false, "comments": "vendor"})
    );
    let fields: Vec<(&str, Value, Value)> = change
        .fields
        .iter()
        .map(|f| (f.field, f.old.clone(), f.new.clone()))
        .collect();
    assert_eq!(
        fields,
        [
            ("verify_sender", json!(true), json!(false)),
            ("comments", Value::Null, json!("vendor"))
        ]
    );
}

#[test]
fn comments_left_out_are_left_alone_and_null_clears_them() {
    let mut stored = policy("a@x.example");
    stored.comments = Some(Some("kept".into()));
    let existing = vec![(uuid(1), stored)];
    assert!(
        plan(&desired(vec![policy("a@x.example")]), &account(&existing))
            .unwrap()
            .is_empty()
    );
    let mut cleared = policy("a@x.example");
    cleared.comments = Some(None);
    let plan = plan(&desired(vec![cleared]), &account(&existing)).unwrap();
    assert_eq!(
        serde_json::to_value(&plan.changes[0].patch).unwrap(),
        json!({"id": uuid(1), "comments": null})
    );
}

#[test]
fn unlisted_policies_are_kept_or_deleted_as_asked() {
    let existing: Vec<_> = (1..=4)
        .map(|i| (uuid(i), policy(&format!("p{i}@x.example"))))
        .collect();
    let mut spec = desired(vec![
        policy("p1@x.example"),
        policy("p2@x.example"),
        policy("p3@x.example"),
    ]);
    let kept = plan(&spec, &account(&existing)).unwrap();
    assert_eq!((kept.kept_unlisted, kept.deletes.len()), (1, 0));
    spec.delete_unlisted = true;
    let deleting = plan(&spec, &account(&existing)).unwrap();
    assert_eq!(deleting.deletes.len(), 1);
    assert_eq!(deleting.deletes[0].id, PolicyId::Uuid(uuid(4)));
    assert!(!deleting.deletes[0].duplicate);
}

#[test]
fn a_second_copy_is_deleted_or_reported() {
    let existing = vec![
        (uuid(1), policy("a@x.example")),
        (uuid(2), policy("b@x.example")),
        (uuid(3), policy("A@x.example")),
    ];
    let mut spec = desired(vec![policy("a@x.example"), policy("b@x.example")]);
    let kept = plan(&spec, &account(&existing)).unwrap();
    assert_eq!(kept.duplicates, vec![(uuid(3), uuid(1))]);
    spec.delete_unlisted = true;
    let deleting = plan(&spec, &account(&existing)).unwrap();
    assert_eq!(deleting.deletes.len(), 1);
    assert!(deleting.deletes[0].duplicate);
}

#[test]
fn an_id_names_the_policy_a_desired_one_stands_for() {
    let existing = vec![
        (uuid(1), policy("old@x.example")),
        (uuid(2), policy("new@x.example")),
    ];
    let mut spec = desired(vec![]);
    // uuid(1) becomes new@x.example; the existing new@x.example is then unlisted.
    spec.desired.push(Desired {
        id: Some(PolicyId::Uuid(uuid(1).to_uppercase())),
        policy: policy("new@x.example"),
    });
    let plan = plan(&spec, &account(&existing)).unwrap();
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(
        plan.changes[0].patch.fields.pattern.as_deref(),
        Some("new@x.example")
    );
    assert_eq!(plan.kept_unlisted, 1);
    assert!(plan.posts.is_empty());

    spec.desired[0].id = Some(PolicyId::Uuid(uuid(9)));
    assert_eq!(
        super::plan(&spec, &account(&existing)),
        Err(PlanError::UnknownId {
            index: 0,
            id: uuid(9)
        })
    );
}

#[test]
fn the_safety_limits_refuse_before_anything_is_sent() {
    let existing: Vec<_> = (0..60)
        .map(|i| (uuid(i), policy(&format!("p{i}@x.example"))))
        .collect();
    let mut spec = desired((0..5).map(|i| policy(&format!("p{i}@x.example"))).collect());
    spec.delete_unlisted = true;
    let err = plan(&spec, &account(&existing)).unwrap_err();
    assert_eq!(
        err,
        PlanError::TooManyDeletes {
            planned: 55,
            limit: 50
        }
    );
    assert_eq!(err.member(), "/sync/max_deletes");
    assert!(err.message().contains("55") && err.message().contains("max_deletes"));
    spec.max_deletes = 55;
    let err = plan(&spec, &account(&existing)).unwrap_err();
    assert_eq!(
        err,
        PlanError::MostDeleted {
            planned: 55,
            total: 60
        }
    );
    assert_eq!(err.member(), "/sync/allow_deleting_most");
    spec.allow_deleting_most = true;
    assert_eq!(plan(&spec, &account(&existing)).unwrap().deletes.len(), 55);

    // An empty list with deletion on deletes every policy: refused too.
    let mut empty = desired(vec![]);
    empty.delete_unlisted = true;
    empty.max_deletes = 100;
    assert!(matches!(
        plan(&empty, &account(&existing)),
        Err(PlanError::MostDeleted {
            planned: 60,
            total: 60
        })
    ));
}

#[test]
fn a_large_plan_is_cut_into_batches_of_at_most_1000_per_list() {
    let existing: Vec<_> = (0..1500)
        .map(|i| (uuid(i), policy(&format!("old{i}@x.example"))))
        .collect();
    let mut spec = desired(
        (0..2500)
            .map(|i| policy(&format!("new{i}@x.example")))
            .collect(),
    );
    spec.delete_unlisted = true;
    spec.max_deletes = 2000;
    spec.allow_deleting_most = true;
    let plan = plan(&spec, &account(&existing)).unwrap();
    let sizes: Vec<(usize, usize)> = plan
        .batches()
        .iter()
        .map(|b| (b.deletes.len(), b.posts.len()))
        .collect();
    assert_eq!(sizes, [(1000, 1000), (500, 1000), (0, 500)]);
}

/// What the API would do with the batches, in order, on a copy of the
/// account: the account afterwards.
fn apply(existing: &[(String, Policy)], plan: &Plan) -> Vec<(String, Policy)> {
    let mut account = existing.to_vec();
    let mut next = 1_000_000;
    for batch in plan.batches() {
        for delete in &batch.deletes {
            account.retain(|(id, _)| *id != delete.id.identity());
        }
        for patch in &batch.patches {
            let (_, p) = account
                .iter_mut()
                .find(|(id, _)| *id == patch.id.identity())
                .unwrap();
            if let Some(v) = &patch.fields.pattern {
                p.pattern = v.clone()
            }
            if let Some(v) = patch.fields.pattern_type {
                p.pattern_type = v
            }
            if let Some(v) = patch.fields.is_regex {
                p.is_regex = v
            }
            if let Some(v) = patch.fields.is_exempt_recipient {
                p.is_exempt_recipient = v
            }
            if let Some(v) = patch.fields.is_trusted_sender {
                p.is_trusted_sender = v
            }
            if let Some(v) = patch.fields.is_acceptable_sender {
                p.is_acceptable_sender = v
            }
            if let Some(v) = patch.fields.verify_sender {
                p.verify_sender = v
            }
            if let Some(v) = &patch.fields.comments {
                p.comments = Some(v.clone())
            }
        }
        for post in &batch.posts {
            next += 1;
            account.push((uuid(next), post.clone()));
        }
    }
    account
}

fn small_policy() -> impl Strategy<Value = Policy> {
    (
        0..6usize,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::option::of("[ab]{0,1}")),
    )
        .prop_map(|(n, trusted, verify, comments)| Policy {
            pattern: format!("p{n}@x.example"),
            pattern_type: PatternType::Email,
            is_regex: false,
            is_exempt_recipient: false,
            is_trusted_sender: trusted,
            is_acceptable_sender: false,
            verify_sender: verify,
            comments,
        })
}

/// Normalised for comparison: identity, the flags, and the comment when
/// the desired policy manages it.
fn shape(p: &Policy) -> (String, bool, bool, Option<String>) {
    (
        p.pattern.clone(),
        p.is_trusted_sender,
        p.verify_sender,
        p.comments.clone().flatten().filter(|c| !c.is_empty()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Applying a plan gives exactly the desired set (plus the unlisted
    /// policies when deletion is off), and planning again finds nothing.
    #[test]
    fn a_plan_converges(
        existing in prop::collection::vec(small_policy(), 0..8),
        wanted in prop::collection::vec(small_policy(), 0..6),
        delete_unlisted in any::<bool>(),
    ) {
        let existing: Vec<(String, Policy)> =
            existing.into_iter().enumerate().map(|(i, p)| (uuid(i), p)).collect();
        // A desired list names each identity once (validation sees to it).
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<Policy> = wanted.into_iter().filter(|p| seen.insert(p.pattern.clone())).collect();
        let spec = SyncSpec {
            desired: wanted.iter().cloned().map(|policy| Desired { id: None, policy }).collect(),
            delete_unlisted,
            max_deletes: 10_000,
            allow_deleting_most: true,
        };
        let first = plan(&spec, &account(&existing)).unwrap();
        let after = apply(&existing, &first);
        let again = plan(&spec, &account(&after)).unwrap();
        prop_assert!(again.is_empty(), "{:?}", again);

        // Every desired policy is there as desired.
        for w in &wanted {
            let (wp, wt, wv, wc) = shape(w);
            let found = after.iter().any(|(_, g)| {
                let (gp, gt, gv, gc) = shape(g);
                // A comment left out stays as it was; a given one is set.
                (gp.as_str(), gt, gv) == (wp.as_str(), wt, wv) && (w.comments.is_none() || gc == wc)
            });
            prop_assert!(found, "{:?} missing from {:?}", w, after);
        }
        // Each desired policy stands for at most one existing one; the
        // rest of the account is deleted, or kept as it was.
        let matched = wanted
            .iter()
            .filter(|w| existing.iter().any(|(_, e)| e.pattern == w.pattern))
            .count();
        let expected = if delete_unlisted {
            wanted.len()
        } else {
            wanted.len() + existing.len() - matched
        };
        prop_assert_eq!(after.len(), expected);
    }
}
