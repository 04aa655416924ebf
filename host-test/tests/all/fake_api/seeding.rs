//! Seed documents, given at start or through `POST /__fake/seed`: policies
//! kept with the ids given, all or none, every problem named by its
//! pointer; and, with legacy ids, integer ids for new policies too.

use super::*;
use host_test::fake_api::{SeedProblem, SeedRefused};

async fn seed_over_http(api: &FakeApi, document: &Value) -> Answer {
    send(
        api,
        Method::POST,
        "/__fake/seed",
        &[("content-type", "application/json")],
        &document.to_string(),
    )
    .await
}

fn with_id(pattern: &str, id: Value) -> Value {
    with_fields(policy(pattern), json!({ "id": id }))
}

async fn start_seeded(legacy_ids: bool, seed: Value) -> anyhow::Result<FakeApi> {
    FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.into()),
        legacy_ids,
        seed: Some(seed),
        ..FakeApiOptions::default()
    })
    .await
}

#[tokio::test]
async fn a_seed_at_start_keeps_the_ids_given_and_a_batch_finds_them() {
    let kept = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
    let gone = "0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10";
    let api = start_seeded(
        false,
        json!({
            ACCOUNT: [with_id("kept@example.com", json!(kept)), with_id("gone@example.com", json!(gone))],
            OTHER_ACCOUNT: [policy("elsewhere@example.com")],
        }),
    )
    .await
    .unwrap();
    let listed_before = listed(&api).await;
    assert_eq!(listed_before[0]["id"], kept);
    assert_eq!(listed_before[1]["id"], gone);
    assert_timestamp(&listed_before[0]["created_at"]);
    let elsewhere = api.policies(OTHER_ACCOUNT);
    assert_eq!(elsewhere.len(), 1);
    assert_uuid_v4(&elsewhere[0]["id"]);

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": gone }]),
            json!([{ "id": kept, "comments": "patched" }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let after = listed(&api).await;
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["comments"], "patched");
    api.shutdown().await;
}

#[tokio::test]
async fn the_seed_endpoint_adds_policies_after_those_there_and_answers_them_as_stored() {
    let api = start(Some(TOKEN)).await;
    let first = create(&api, "first@example.com").await;
    let given = "5b2e8f14-3c6d-4a9e-8f01-7d3c2b1a0e9f";
    let answer = seed_over_http(
        &api,
        &json!({ ACCOUNT: [with_id("given@example.com", json!(given)), policy("made@example.com")] }),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["success"], true);
    let stored = answer.json["result"][ACCOUNT].as_array().unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["id"], given);
    assert_uuid_v4(&stored[1]["id"]);
    assert_eq!(stored[1]["pattern"], "made@example.com");
    let all = listed(&api).await;
    let ids: Vec<&Value> = all.as_array().unwrap().iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, [&first["id"], &stored[0]["id"], &stored[1]["id"]]);
    // Seeding is no API request: a test that counts them is not misled.
    assert_eq!(api.requests(), 2, "one batch and one list only");

    // Only POST; the body must be JSON.
    let wrong_method = send(&api, Method::GET, "/__fake/seed", &[], "").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "POST");
    let not_json = send(&api, Method::POST, "/__fake/seed", &[], "{").await;
    assert_eq!(not_json.status, 400);
    api.shutdown().await;
}

#[tokio::test]
async fn a_bad_seed_is_refused_whole_with_every_problem_at_its_pointer() {
    let api = start(Some(TOKEN)).await;
    let taken = create(&api, "taken@example.com").await;
    let twice = "0b6ad3a1-9d0c-4b53-9f43-6f3c3a1f2e10";
    let mut missing_pattern = policy("x@example.com");
    missing_pattern.as_object_mut().unwrap().remove("pattern");
    let document = json!({
        ACCOUNT: [
            policy("fine@example.com"),
            with_id("taken-again@example.com", taken["id"].clone()),
            with_id("twice-1@example.com", json!(twice)),
            with_id("twice-2@example.com", json!(twice)),
        ],
        OTHER_ACCOUNT: [missing_pattern, "not a policy", with_id("int@example.com", json!(2401))],
        "not-an-account": [],
        "ffffffffffffffffffffffffffffff00": {},
    });
    let before = listed(&api).await;

    let answer = seed_over_http(&api, &document).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    let mut problems = failure_errors(&answer);
    problems.sort();
    let mut expected = vec![
        (code::INVALID_FIELD, format!("/{OTHER_ACCOUNT}/0/pattern")),
        (code::INVALID_FIELD, format!("/{OTHER_ACCOUNT}/1")),
        (code::INVALID_FIELD, format!("/{OTHER_ACCOUNT}/2/id")),
        (code::INVALID_SEED, "/not-an-account".to_string()),
        (
            code::INVALID_SEED,
            "/ffffffffffffffffffffffffffffff00".to_string(),
        ),
    ];
    expected.sort();
    assert_eq!(
        problems,
        expected
            .into_iter()
            .map(|(c, p)| (u64::from(c), p))
            .collect::<Vec<_>>(),
        "{}",
        answer.text
    );
    let integer = answer.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"]["pointer"] == format!("/{OTHER_ACCOUNT}/2/id"))
        .unwrap();
    assert!(
        integer["message"]
            .as_str()
            .unwrap()
            .contains("--legacy-ids"),
        "{integer}"
    );

    // The document's shape is right now, its ids are not: those are found
    // only against the account, and refuse it whole too.
    let ids_only = json!({ ACCOUNT: document[ACCOUNT].clone() });
    let answer = seed_over_http(&api, &ids_only).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [
            (u64::from(code::SEED_ID_TAKEN), format!("/{ACCOUNT}/1/id")),
            (u64::from(code::SEED_ID_TAKEN), format!("/{ACCOUNT}/3/id")),
        ]
    );
    assert!(answer.json["errors"][1]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("/{ACCOUNT}/2/id")));
    assert_eq!(
        listed(&api).await,
        before,
        "part of a refused seed was stored"
    );
    assert!(api.policies(OTHER_ACCOUNT).is_empty());

    let not_an_object = seed_over_http(&api, &json!([policy("a@example.com")])).await;
    assert_eq!(
        failure_errors(&not_an_object),
        [(u64::from(code::INVALID_SEED), String::new())]
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_seed_refused_at_start_names_every_problem_and_nothing_listens() {
    let error = start_seeded(
        false,
        json!({ ACCOUNT: [with_id("int@example.com", json!(7)), {"pattern": ""}] }),
    )
    .await
    .expect_err("a bad seed");
    let refused = error
        .downcast_ref::<SeedRefused>()
        .expect("the problems, as data");
    let pointers: Vec<&str> = refused
        .problems
        .iter()
        .map(|p: &SeedProblem| p.pointer.as_str())
        .collect();
    assert!(
        pointers.contains(&format!("/{ACCOUNT}/0/id").as_str()),
        "{pointers:?}"
    );
    assert!(
        pointers.contains(&format!("/{ACCOUNT}/1/pattern").as_str()),
        "{pointers:?}"
    );
    assert!(
        format!("{error:#}").contains(&format!("/{ACCOUNT}/1/pattern: ")),
        "{error:#}"
    );
}

#[tokio::test]
async fn with_legacy_ids_seeds_take_integer_ids_and_new_policies_get_the_next_ones() {
    let api = start_seeded(
        true,
        json!({ ACCOUNT: [with_id("old@example.com", json!(2401)), policy("unnumbered@example.com")] }),
    )
    .await
    .unwrap();
    let seeded = api.policies(ACCOUNT);
    assert_eq!(seeded[0]["id"], 2401);
    assert_eq!(
        seeded[1]["id"], 2402,
        "a seed without id numbered after the others"
    );

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": 2401 }]),
            json!([{ "id": 2402, "comments": "patched" }]),
            json!([]),
            json!([policy("new-1@example.com"), policy("new-2@example.com")]),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let created: Vec<&Value> = answer.json["result"]["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(created, [&json!(2403), &json!(2404)]);

    // Through the endpoint as well; a higher id moves the numbering on.
    let answer = seed_over_http(
        &api,
        &json!({ ACCOUNT: [with_id("later@example.com", json!(9000))] }),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(create(&api, "after@example.com").await["id"], 9001);
    api.shutdown().await;
}
