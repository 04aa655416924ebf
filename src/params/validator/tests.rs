use super::*;
use serde_json::json;

fn post() -> Value {
    json!({
        "pattern": "alerts@example.com", "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true
    })
}

/// Policy ids as the current API writes them.
const ID_A: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
const ID_B: &str = "0b4dc0de-5a1e-4c1a-9d2e-7f00d5e1a2b3";

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn check(input: Value) -> (Option<ValidInput>, Report) {
    let mut report = Report::default();
    let valid = parse_input(&input, &mut report);
    (valid, report)
}

/// (pointer, message) of every error.
fn errors(input: Value) -> Vec<(String, String)> {
    let (valid, report) = check(input);
    assert!(report.errors.is_empty() == valid.is_some());
    report
        .errors
        .into_iter()
        .map(|p| (p.pointer, p.message))
        .collect()
}

fn warnings(input: Value) -> Vec<(String, String)> {
    let (valid, report) = check(input);
    assert!(valid.is_some(), "unexpected errors: {:?}", report.errors);
    report
        .warnings
        .into_iter()
        .map(|p| (p.pointer, p.message))
        .collect()
}

fn one_error(input: Value) -> (String, String) {
    let e = errors(input);
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

fn body(input: Value) -> Value {
    let (valid, report) = check(input);
    let valid = valid.unwrap_or_else(|| panic!("{:?}", report.errors));
    serde_json::to_value(&valid.body).unwrap()
}

#[test]
fn empty_input_is_an_empty_batch() {
    let (valid, report) = check(json!({}));
    assert!(report.errors.is_empty() && report.warnings.is_empty());
    let valid = valid.unwrap();
    assert!(valid.body.is_empty());
    assert_eq!(valid.account_id, None);
}

#[test]
fn input_must_be_an_object() {
    assert_eq!(
        one_error(json!("posts")),
        ("".into(), "expected an object, got a string".into())
    );
}

#[test]
fn wrong_json_types_are_named() {
    let e = errors(json!({
        "deletes": {"id": 1},
        "posts": [with(post(), "is_regex", json!("false")), 7],
        "patches": [{"id": 1, "comments": 5}]
    }));
    assert_eq!(
        e,
        vec![
            ("/deletes".into(), "expected an array, got an object".into()),
            (
                "/patches/0/comments".into(),
                "expected a string or null, got an integer".into()
            ),
            (
                "/posts/0/is_regex".into(),
                "expected a boolean, got a string".into()
            ),
            (
                "/posts/1".into(),
                "expected an object, got an integer".into()
            ),
        ]
    );
}

#[test]
fn missing_required_fields_in_creates_and_replaces() {
    for field in Field::ALL.iter().filter(|f| f.required()).map(|f| f.name()) {
        let e = one_error(json!({"posts": [without(post(), field)]}));
        assert_eq!(
            e,
            (
                format!("/posts/0/{field}"),
                "required field is missing".into()
            )
        );
        let put = with(without(post(), field), "id", json!(7));
        let e = one_error(json!({"puts": [put]}));
        assert_eq!(
            e,
            (
                format!("/puts/0/{field}"),
                "required field is missing".into()
            )
        );
    }
    assert_eq!(
        one_error(json!({"puts": [post()]})),
        ("/puts/0/id".into(), "required field is missing".into())
    );
    assert_eq!(
        one_error(json!({"patches": [{"pattern": "a@b.co"}]})).0,
        "/patches/0/id"
    );
    assert_eq!(one_error(json!({"deletes": [{}]})).0, "/deletes/0/id");
}

#[test]
fn unknown_fields_at_every_level() {
    let e = errors(json!({
        "acount_id": "x",
        "posts": [with(post(), "patern", json!("x"))],
        "deletes": [{"id": 1, "force": true}],
        "patches": [{"id": 2, "comment": "typo"}],
        "puts": [with(with(post(), "id", json!(3)), "id_", json!(3))]
    }));
    let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/acount_id",
            "/deletes/0/force",
            "/patches/0/comment",
            "/puts/0/id_",
            "/posts/0/patern"
        ]
    );
    assert!(e[0].1.contains("did you mean \"account_id\""), "{}", e[0].1);
    assert!(e[2].1.contains("did you mean \"comments\""), "{}", e[2].1);
    // `id` is not a field of a create.
    assert_eq!(
        one_error(json!({"posts": [with(post(), "id", json!(1))]})).0,
        "/posts/0/id"
    );
}

#[test]
fn bad_enum_value_message() {
    assert_eq!(
        one_error(json!({"posts": [with(post(), "pattern_type", json!("EMAILS"))]})),
        (
            "/posts/0/pattern_type".into(),
            "expected one of EMAIL, DOMAIN, IP, got \"EMAILS\"".into()
        )
    );
    assert_eq!(
        one_error(json!({"patches": [{"id": 1, "pattern_type": "email"}]})).0,
        "/patches/0/pattern_type"
    );
}

#[test]
fn string_lengths() {
    let long = "a".repeat(1025);
    assert_eq!(
        one_error(
            json!({"posts": [with(with(post(), "pattern", json!("")), "is_regex", json!(true))]})
        ),
        (
            "/posts/0/pattern".into(),
            "expected 1 to 1024 characters, got 0".into()
        )
    );
    assert_eq!(
        one_error(
            json!({"posts": [with(with(post(), "pattern", json!(long)), "is_regex", json!(true))]})
        )
        .1,
        "expected 1 to 1024 characters, got 1025"
    );
    assert_eq!(
        one_error(json!({"posts": [with(post(), "comments", json!(long))]})),
        (
            "/posts/0/comments".into(),
            "expected at most 1024 characters, got 1025".into()
        )
    );
    // Characters, not bytes: 1024 three-byte characters fit.
    let wide = "é".repeat(1024);
    assert!(errors(json!({"posts": [with(post(), "comments", json!(wide))]})).is_empty());
}

#[test]
fn at_most_1000_items_per_array() {
    let deletes: Vec<Value> = (1..=1001).map(|i| json!({"id": i})).collect();
    assert_eq!(
        one_error(json!({"deletes": deletes})),
        (
            "/deletes".into(),
            "has 1001 items; the API accepts at most 1000 in one array, split the batch".into()
        )
    );
    let deletes: Vec<Value> = (1..=1000).map(|i| json!({"id": i})).collect();
    assert!(errors(json!({"deletes": deletes})).is_empty());
}

#[test]
fn policy_ids() {
    for good in [
        json!(1),
        json!(2401),
        json!(2147483647),
        json!("f174e90a-fafe-4643-bbbc-4a0ed4fc8415"),
        json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415"),
    ] {
        assert!(
            errors(json!({"deletes": [{"id": good}]})).is_empty(),
            "{good}"
        );
    }
    for (bad, shown) in [
        (json!(0), "0"),
        (json!(-3), "-3"),
        (json!(2147483648u64), "2147483648"),
        (json!(1.5), "1.5"),
        (json!("2401"), "\"2401\""),
        (
            json!("f174e90a-fafe-4643-bbbc-4a0ed4fc841"),
            "\"f174e90a-fafe-4643-bbbc-4a0ed4fc841\"",
        ),
        (
            json!("f174e90afafe4643bbbc4a0ed4fc8415abcd"),
            "\"f174e90afafe4643bbbc4a0ed4fc8415abcd\"",
        ),
        (json!(null), "null"),
        (json!(true), "a boolean"),
    ] {
        assert_eq!(
            one_error(json!({"deletes": [{"id": bad}]})),
            (
                "/deletes/0/id".into(),
                format!(
                    "expected a policy id: a positive 32-bit integer or a UUID string, got {shown}"
                )
            ),
            "{bad}"
        );
    }
}

#[test]
fn ids_pass_through_unchanged() {
    let uuid = "F174E90A-fafe-4643-BBBC-4a0ed4fc8415";
    let b = body(json!({"deletes": [{"id": 2401}, {"id": uuid}]}));
    assert_eq!(b["deletes"], json!([{"id": 2401}, {"id": uuid}]));
}

#[test]
fn account_id_in_input() {
    let good = "0123456789abcdef0123456789abcdef";
    let (valid, _) = check(json!({"account_id": good}));
    assert_eq!(valid.unwrap().account_id.as_deref(), Some(good));
    for bad in [
        "0123456789ABCDEF0123456789ABCDEF",
        "../../user/tokens/verify",
        "abc?x=1",
        "abc#f",
        "a%2Fb",
        "0123456789abcdef 0123456789abcde",
        "",
        "a/b",
    ] {
        assert_eq!(
            one_error(json!({"account_id": bad})).0,
            "/account_id",
            "{bad}"
        );
    }
    assert_eq!(
        one_error(json!({"account_id": 12})).1,
        "expected a string, got an integer"
    );
}

#[test]
fn pattern_must_match_its_type_when_not_a_regex() {
    for (kind, bad) in [
        ("EMAIL", "not-an-address"),
        ("EMAIL", "a@@"),
        ("DOMAIN", "exa mple.com"),
        ("DOMAIN", "-bad.example.com"),
        ("IP", "1.2.3.999"),
        ("IP", "10.0.0.0/33"),
        ("IP", "example.com"),
    ] {
        let p = with(
            with(post(), "pattern_type", json!(kind)),
            "pattern",
            json!(bad),
        );
        let (pointer, message) = one_error(json!({"posts": [p]}));
        assert_eq!(pointer, "/posts/0/pattern", "{kind} {bad}");
        assert!(
            message.starts_with(&format!(
                "pattern_type is {kind} and is_regex is false, but the pattern "
            )),
            "{message}"
        );
    }
    for (kind, good) in [
        ("EMAIL", "a.b+c@mail.example.co.uk"),
        ("DOMAIN", "example.com"),
        ("DOMAIN", "sub.example.com."),
        ("IP", "8.8.8.8"),
        ("IP", "8.8.4.0/24"),
        ("IP", "2606:4700::/32"),
    ] {
        let p = with(
            with(post(), "pattern_type", json!(kind)),
            "pattern",
            json!(good),
        );
        assert!(errors(json!({"posts": [p]})).is_empty(), "{kind} {good}");
    }
    // As a regex the same text is judged as a regex, not as an address.
    let p = with(
        with(post(), "is_regex", json!(true)),
        "pattern",
        json!(".*@example\\.com"),
    );
    assert!(errors(json!({"posts": [p]})).is_empty());
}

#[test]
fn regex_patterns_must_be_well_formed() {
    let p = with(
        with(post(), "is_regex", json!(true)),
        "pattern",
        json!("(abc"),
    );
    let (pointer, message) = one_error(json!({"posts": [p]}));
    assert_eq!(pointer, "/posts/0/pattern");
    assert!(message.contains("regular expression"), "{message}");
    let patch = json!({"id": 9, "is_regex": true, "pattern": "a{3,1}"});
    assert_eq!(
        one_error(json!({"patches": [patch]})).0,
        "/patches/0/pattern"
    );
}

#[test]
fn patch_pattern_is_checked_only_against_what_it_gives() {
    // Without is_regex the stored policy decides; nothing to check here.
    assert!(
        errors(json!({"patches": [{"id": 1, "pattern": "(", "pattern_type": "EMAIL"}]})).is_empty()
    );
    let e = one_error(
        json!({"patches": [{"id": 1, "pattern": "nope", "pattern_type": "EMAIL", "is_regex": false}]}),
    );
    assert_eq!(e.0, "/patches/0/pattern");
}

#[test]
fn the_same_policy_twice_is_an_error() {
    let e = errors(json!({
        "deletes": [{"id": 5}, {"id": 5}],
        "patches": [{"id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "comments": "x"}],
        "puts": [with(post(), "id", json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415"))]
    }));
    assert_eq!(
        e,
        vec![
            ("/deletes/1/id".into(), "policy 5 also appears at /deletes/0/id; a batch may name each policy only once".into()),
            ("/puts/0/id".into(), "policy f174e90a-fafe-4643-bbbc-4a0ed4fc8415 also appears at /patches/0/id; a batch may name each policy only once".into()),
        ]
    );
    // Across deletes and patches too.
    assert_eq!(
        one_error(json!({"deletes": [{"id": 8}], "patches": [{"id": 8, "comments": null}]})).0,
        "/patches/0/id"
    );
}

#[test]
fn deprecated_booleans_are_dropped_from_creates_and_replaces() {
    let p = with(
        with(post(), "is_sender", json!(true)),
        "is_spoof",
        json!(false),
    );
    let w = warnings(json!({"posts": [p.clone()], "puts": [with(p, "id", json!(ID_A))]}));
    assert_eq!(
        w,
        vec![
            (
                "/puts/0/is_sender".into(),
                "is_sender is deprecated and not sent; is_trusted_sender already says the same"
                    .into()
            ),
            (
                "/puts/0/is_spoof".into(),
                "is_spoof is deprecated and not sent; is_acceptable_sender already says the same"
                    .into()
            ),
            (
                "/posts/0/is_sender".into(),
                "is_sender is deprecated and not sent; is_trusted_sender already says the same"
                    .into()
            ),
            (
                "/posts/0/is_spoof".into(),
                "is_spoof is deprecated and not sent; is_acceptable_sender already says the same"
                    .into()
            ),
        ]
    );
    let b = body(json!({"posts": [with(post(), "is_recipient", json!(false))]}));
    let sent = b["posts"][0].as_object().unwrap();
    for name in ["is_recipient", "is_sender", "is_spoof"] {
        assert!(!sent.contains_key(name), "{name} was sent");
    }
}

#[test]
fn deprecated_boolean_contradicting_its_replacement_is_an_error() {
    let p = with(post(), "is_sender", json!(false)); // is_trusted_sender is true
    assert_eq!(
        one_error(json!({"posts": [p]})),
        (
            "/posts/0/is_sender".into(),
            "is false but is_trusted_sender is true; is_sender is deprecated and not sent, remove it".into()
        )
    );
    let e = one_error(
        json!({"patches": [{"id": 1, "is_recipient": true, "is_exempt_recipient": false}]}),
    );
    assert_eq!(e.0, "/patches/0/is_recipient");
}

#[test]
fn deprecated_boolean_alone_in_a_create_names_the_replacement() {
    let p = with(
        without(post(), "is_trusted_sender"),
        "is_sender",
        json!(true),
    );
    assert_eq!(
        one_error(json!({"posts": [p]})),
        (
            "/posts/0/is_trusted_sender".into(),
            "required field is missing; is_sender is deprecated and not sent, rename it to is_trusted_sender".into()
        )
    );
}

#[test]
fn deprecated_boolean_in_a_patch_moves_to_its_replacement() {
    let input = json!({"patches": [{"id": ID_A, "is_sender": true, "is_spoof": false}]});
    assert_eq!(
        warnings(input.clone()),
        vec![
            (
                "/patches/0/is_sender".into(),
                "is_sender is deprecated; its value is sent as is_trusted_sender".into()
            ),
            (
                "/patches/0/is_spoof".into(),
                "is_spoof is deprecated; its value is sent as is_acceptable_sender".into()
            ),
        ]
    );
    assert_eq!(
        body(input)["patches"],
        json!([{"id": ID_A, "is_trusted_sender": true, "is_acceptable_sender": false}])
    );
}

#[test]
fn unknown_pattern_type_is_refused_in_every_write() {
    let p = with(post(), "pattern_type", json!("UNKNOWN"));
    let e = errors(json!({
        "posts": [p.clone()],
        "puts": [with(p, "id", json!(ID_B))],
        "patches": [{"id": ID_A, "pattern_type": "UNKNOWN"}],
    }));
    let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/patches/0/pattern_type",
            "/puts/0/pattern_type",
            "/posts/0/pattern_type"
        ]
    );
    for (_, message) in &e {
        assert!(message.contains("refuses it"), "{message}");
        assert!(message.contains("use EMAIL, DOMAIN or IP"), "{message}");
    }
}

#[test]
fn ip_patterns_that_are_not_globally_reachable_are_refused() {
    let ip_post = |pattern: &str| {
        with(
            with(post(), "pattern_type", json!("IP")),
            "pattern",
            json!(pattern),
        )
    };
    for (ip, range) in [
        ("10.1.2.3", "10.0.0.0/8"),
        ("0.0.0.0/0", "10.0.0.0/8"),
        ("192.168.0.0/16", "192.168.0.0/16"),
        ("100.64.1.1", "100.64.0.0/10"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("169.254.1.1", "169.254.0.0/16"),
        ("198.18.0.1", "198.18.0.0/15"),
        ("203.0.113.7", "203.0.113.0/24"),
        ("224.0.0.1", "224.0.0.0/4"),
        ("240.0.0.1", "240.0.0.0/4"),
        ("::1", "::1/128"),
        ("fe80::1", "fe80::/10"),
        ("fd00::/8", "fc00::/7"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::ffff:10.0.0.1", "10.0.0.0/8"),
    ] {
        let (at, message) = one_error(json!({"posts": [ip_post(ip)]}));
        assert_eq!(at, "/posts/0/pattern", "{ip}");
        assert!(message.contains(range), "{ip}: {message}");
        assert!(
            message.contains("not globally reachable"),
            "{ip}: {message}"
        );
    }
    // The same pattern in a put and in a patch that says it is an IP.
    let put = with(ip_post("10.0.0.0/8"), "id", json!(ID_A));
    let patch = json!({"id": ID_B, "pattern_type": "IP", "is_regex": false, "pattern": "10.0.0.1"});
    let e = errors(json!({"puts": [put], "patches": [patch]}));
    let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["/patches/0/pattern", "/puts/0/pattern"]);
    for ip in ["8.8.8.0/24", "2606:4700::/32", "1.1.1.1", "::ffff:8.8.8.8"] {
        assert_eq!(warnings(json!({"posts": [ip_post(ip)]})), vec![], "{ip}");
    }
}

#[test]
fn integer_ids_are_sent_with_a_warning() {
    let input = json!({
        "deletes": [{"id": 2401}, {"id": ID_A}],
        "patches": [{"id": 7, "comments": "x"}],
        "puts": [with(post(), "id", json!(2147483647))],
    });
    let w = warnings(input.clone());
    let pointers: Vec<&str> = w.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["/deletes/0/id", "/patches/0/id", "/puts/0/id"]);
    for (_, message) in &w {
        assert!(message.contains("UUID"), "{message}");
        assert!(message.contains("refuses"), "{message}");
    }
    let sent = body(input);
    assert_eq!(sent["deletes"], json!([{"id": 2401}, {"id": ID_A}]));
    assert_eq!(sent["patches"][0]["id"], json!(7));
    assert_eq!(sent["puts"][0]["id"], json!(2147483647));
}

#[test]
fn a_patch_that_changes_nothing_is_a_warning() {
    assert_eq!(
        warnings(json!({"patches": [{"id": ID_A}]})),
        vec![(
            "/patches/0".into(),
            "this patch changes nothing: give at least one field besides id".into()
        )]
    );
    // Clearing a comment is a change.
    assert!(warnings(json!({"patches": [{"id": ID_B, "comments": null}]})).is_empty());
}

#[test]
fn duplicate_posts_are_a_warning() {
    let a = post();
    let b = with(post(), "pattern", json!("ALERTS@example.com"));
    let c = with(post(), "pattern_type", json!("DOMAIN"));
    let c = with(c, "pattern", json!("example.com"));
    assert_eq!(
        warnings(json!({"posts": [a, c, b]})),
        vec![(
            "/posts/2".into(),
            "creates a policy with the same pattern_type and pattern as /posts/0".into()
        )]
    );
}

#[test]
fn comments_null_is_kept_and_absent_comments_are_not_sent() {
    let b = body(json!({
        "patches": [{"id": 1, "comments": null}, {"id": 2, "comments": "why"}, {"id": 3, "verify_sender": false}]
    }));
    assert_eq!(
        b["patches"],
        json!([{"id": 1, "comments": null}, {"id": 2, "comments": "why"}, {"id": 3, "verify_sender": false}])
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let deletes: Vec<Value> = (0..1001).map(|i| json!({"id": i})).collect();
    let e = errors(json!({
        "account_id": "nope",
        "deletes": deletes,
        "posts": [without(post(), "pattern"), with(post(), "pattern_type", json!("X"))],
        "extra": 1
    }));
    let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/extra",
            "/account_id",
            "/deletes",
            "/deletes/0/id",
            "/posts/0/pattern",
            "/posts/1/pattern_type"
        ]
    );
}

#[test]
fn every_problem_of_one_item_is_reported() {
    let a = with(
        with(with(post(), "x", json!(1)), "verify_sender", json!("yes")),
        "pattern",
        json!("not-an-address"),
    );
    let b = with(
        with(post(), "pattern_type", json!("EMAILS")),
        "is_regex",
        json!("no"),
    );
    let pointers: Vec<String> = errors(json!({"posts": [a, b]}))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        pointers,
        [
            "/posts/0/x",
            "/posts/0/verify_sender",
            "/posts/0/pattern",
            "/posts/1/pattern_type",
            "/posts/1/is_regex"
        ]
    );
}

#[test]
fn pattern_length_counts_characters() {
    let wide = "é".repeat(1024);
    let p = with(
        with(post(), "pattern", json!(wide)),
        "is_regex",
        json!(true),
    );
    assert!(errors(json!({"posts": [p]})).is_empty());
}

#[test]
fn put_pattern_is_checked() {
    let p = with(
        with(post(), "id", json!(ID_A)),
        "pattern",
        json!("not-an-address"),
    );
    assert_eq!(one_error(json!({"puts": [p]})).0, "/puts/0/pattern");
}

#[test]
fn deprecated_alone_in_a_put_names_the_replacement() {
    let p = with(
        with(
            without(post(), "is_trusted_sender"),
            "is_sender",
            json!(true),
        ),
        "id",
        json!(ID_A),
    );
    let (valid, report) = check(json!({"puts": [p]}));
    assert!(valid.is_none());
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0]
            .message
            .contains("rename it to is_trusted_sender"),
        "{:?}",
        report.errors
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn sync_takes_desired_policies_checked_as_creates() {
    let input = json!({"sync": {"policies": [post(), with(with(post(), "pattern", json!("b@example.com")), "id", json!(ID_A))],
        "delete_unlisted": true, "max_deletes": 7}});
    let (valid, report) = check(input);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let sync = valid.unwrap().sync.unwrap();
    assert_eq!(sync.desired.len(), 2);
    assert_eq!(sync.desired[0].id, None);
    assert_eq!(sync.desired[1].id, Some(PolicyId::Uuid(ID_A.into())));
    assert_eq!(
        (
            sync.delete_unlisted,
            sync.max_deletes,
            sync.allow_deleting_most
        ),
        (true, 7, false)
    );

    let defaults = check(json!({"sync": {"policies": []}}))
        .0
        .unwrap()
        .sync
        .unwrap();
    assert_eq!(
        (
            defaults.delete_unlisted,
            defaults.max_deletes,
            defaults.allow_deleting_most
        ),
        (false, DEFAULT_MAX_DELETES, false)
    );
}

#[test]
fn sync_problems_are_named_by_their_pointers() {
    let bad_pattern = with(post(), "pattern", json!("not an address"));
    let found = errors(json!({
        "posts": [post()],
        "sync": {
            "policies": [bad_pattern, without(post(), "verify_sender"), post(), with(post(), "id", json!("x"))],
            "max_deletes": -1, "delete_unlisted": "yes", "extra": 1
        }
    }));
    let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "/sync",
        "/sync/extra",
        "/sync/delete_unlisted",
        "/sync/max_deletes",
        "/sync/policies/0/pattern",
        "/sync/policies/1/verify_sender",
        "/sync/policies/3/id",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} not in {pointers:?}"
        );
    }
    // The four lists and sync exclude each other.
    let (_, message) = found.iter().find(|(p, _)| p == "/sync").unwrap();
    assert!(message.contains("posts"), "{message}");
    // The same policy listed twice (letter case aside) is refused at the second.
    let twice = errors(
        json!({"sync": {"policies": [post(), with(post(), "pattern", json!("ALERTS@example.com"))]}}),
    );
    assert_eq!(twice.len(), 1);
    assert_eq!(twice[0].0, "/sync/policies/1");
    assert!(twice[0].1.contains("/sync/policies/0"), "{}", twice[0].1);
    // policies is required.
    assert_eq!(errors(json!({"sync": {}}))[0].0, "/sync/policies");
}
