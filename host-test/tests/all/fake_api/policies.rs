//! Creating, changing and deleting policies by id, as the fake API applies
//! a batch: all of it or nothing.

use super::*;

#[tokio::test]
async fn a_created_policy_is_listed_with_a_uuid_and_timestamps() {
    let api = start(Some(TOKEN)).await;
    let answer = post_batch(&api, &posts(vec![policy("alerts@example.com")])).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.json["success"], true);
    assert_eq!(answer.json["errors"], json!([]));
    assert_eq!(answer.json["messages"], json!([]));
    let result = &answer.json["result"];
    assert_eq!(result["deletes"], json!([]));
    assert_eq!(result["patches"], json!([]));
    assert_eq!(result["puts"], json!([]));
    let created = &result["posts"][0];
    assert_uuid_v4(&created["id"]);
    assert_timestamp(&created["created_at"]);
    assert_eq!(created["modified_at"], created["created_at"]);
    assert_eq!(created["last_modified"], created["modified_at"]);
    for (key, value) in policy("alerts@example.com").as_object().unwrap() {
        assert_eq!(&created[key], value, "{key}");
    }

    let listed_now = listed(&api).await;
    assert_eq!(listed_now, json!([created]));
    assert_eq!(api.policies(ACCOUNT), vec![created.clone()]);
    assert!(api.policies(OTHER_ACCOUNT).is_empty());
    api.shutdown().await;
}

#[tokio::test]
async fn an_existing_policy_can_be_patched_replaced_and_deleted_by_id() {
    let api = start(Some(TOKEN)).await;
    let created = create(&api, "first@example.com").await;
    let id = created["id"].as_str().unwrap().to_string();

    let patch = batch(
        json!([]),
        json!([{ "id": id, "verify_sender": false, "comments": null }]),
        json!([]),
        json!([]),
    );
    let answer = post_batch(&api, &patch).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let patched = &answer.json["result"]["patches"][0];
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["verify_sender"], false);
    assert_eq!(patched["comments"], Value::Null);
    assert_eq!(patched["pattern"], "first@example.com");
    assert_eq!(patched["is_trusted_sender"], true);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(patched["modified_at"].as_str() > created["modified_at"].as_str());
    assert_eq!(patched["last_modified"], patched["modified_at"]);

    // An id in capitals names the same policy.
    let mut replacement = policy("second.example");
    replacement["pattern_type"] = json!("DOMAIN");
    replacement.as_object_mut().unwrap().remove("comments");
    replacement["id"] = json!(id.to_uppercase());
    let answer = post_batch(
        &api,
        &batch(json!([]), json!([]), json!([replacement]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let replaced = &answer.json["result"]["puts"][0];
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["pattern"], "second.example");
    assert_eq!(replaced["pattern_type"], "DOMAIN");
    assert_eq!(replaced["comments"], Value::Null);
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(listed(&api).await, json!([replaced]));

    let answer = post_batch(
        &api,
        &batch(json!([{ "id": id }]), json!([]), json!([]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": id }]));
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn operations_run_in_order_deletes_patches_puts_posts() {
    let api = start(Some(TOKEN)).await;
    let id = create(&api, "gone@example.com").await["id"].clone();
    // The delete comes first, so the patch of the same id finds nothing.
    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": id }]),
            json!([{ "id": id, "is_regex": true }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::POLICY_NOT_FOUND as u64, "/patches/0/id".to_string())]
    );
    assert_eq!(listed(&api).await.as_array().unwrap().len(), 1);
    api.shutdown().await;
}

#[tokio::test]
async fn an_unknown_id_rejects_the_whole_batch_and_changes_nothing() {
    let api = start(Some(TOKEN)).await;
    let kept = create(&api, "kept@example.com").await;
    let before = listed(&api).await;

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": "0b6ad3a1-9d0c-4b53-9f43-6f3c3a1f2e10" }]),
            json!([{ "id": kept["id"], "comments": "changed" }]),
            json!([]),
            json!([policy("new@example.com")]),
        ),
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::POLICY_NOT_FOUND as u64, "/deletes/0/id".to_string())]
    );
    assert!(answer.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert_eq!(listed(&api).await, before);
    api.shutdown().await;

    // With legacy ids every missing id is named, integers included.
    let api = start_with(Some(TOKEN), true).await;
    let mut put = policy("x.example");
    put["id"] = json!(2401);
    let answer = post_batch(
        &api,
        &batch(json!([{ "id": 7 }]), json!([]), json!([put]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        failure_errors(&answer),
        [
            (code::POLICY_NOT_FOUND as u64, "/deletes/0/id".to_string()),
            (code::POLICY_NOT_FOUND as u64, "/puts/0/id".to_string()),
        ]
    );
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn integer_ids_fail_the_batch_unless_legacy_ids_are_on() {
    let api = start(Some(TOKEN)).await;
    let seeded = api
        .seed(
            ACCOUNT,
            [{
                let mut p = policy("old@example.com");
                p["id"] = json!(2401);
                p
            }],
        )
        .unwrap();
    assert_eq!(seeded[0]["id"], json!(2401));
    let kept = create(&api, "kept@example.com").await;
    let before = listed(&api).await;
    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": 2401 }]),
            json!([{ "id": kept["id"], "comments": "x" }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::INVALID_FIELD as u64, "/deletes/0/id".to_string())]
    );
    assert!(answer.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("UUID"));
    assert_eq!(listed(&api).await, before);
    api.shutdown().await;

    let api = start_with(Some(TOKEN), true).await;
    api.seed(
        ACCOUNT,
        [{
            let mut p = policy("old@example.com");
            p["id"] = json!(2401);
            p
        }],
    )
    .unwrap();
    let answer = post_batch(
        &api,
        &batch(json!([{ "id": 2401 }]), json!([]), json!([]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": 2401 }]));
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn seeded_policies_allow_integer_ids_and_unknown_pattern_types() {
    // Legacy ids on, so that the batch below may name the integer id.
    let api = start_with(Some(TOKEN), true).await;
    let mut legacy = policy("old@example.com");
    legacy["id"] = json!(2401);
    let mut unknown = policy("odd");
    unknown["id"] = json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415");
    unknown["pattern_type"] = json!("UNKNOWN");
    let seeded = api
        .seed(ACCOUNT, vec![legacy, unknown, policy("fresh@example.com")])
        .unwrap();
    assert_eq!(seeded.len(), 3);
    assert_eq!(seeded[0]["id"], 2401);
    // With legacy ids, a policy seeded without one is numbered as the
    // older API numbered them: after the highest integer id.
    assert_eq!(seeded[2]["id"], 2402);
    assert_timestamp(&seeded[0]["created_at"]);
    assert_eq!(listed(&api).await, Value::Array(seeded.clone()));

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": 2401 }]),
            json!([{ "id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "verify_sender": false }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": 2401 }]));
    let patched = &answer.json["result"]["patches"][0];
    assert_eq!(patched["id"], "F174E90A-FAFE-4643-BBBC-4A0ED4FC8415");
    assert_eq!(patched["pattern_type"], "UNKNOWN");
    assert_eq!(patched["verify_sender"], false);

    // All or nothing, and never a second policy with the same id.
    let mut duplicate = policy("dup@example.com");
    duplicate["id"] = seeded[2]["id"].clone();
    assert!(api
        .seed(ACCOUNT, vec![policy("ok@example.com"), duplicate])
        .is_err());
    let mut bad = policy("bad@example.com");
    bad["pattern"] = json!("");
    let error = api.seed(ACCOUNT, vec![bad]).unwrap_err();
    assert!(error.to_string().contains("/0/pattern"), "{error}");
    assert!(api.seed("not-an-account", vec![]).is_err());
    assert_eq!(api.policies(ACCOUNT).len(), 2);
    api.shutdown().await;
}
