use serde_json::json;

use super::*;

fn parse(body: Value) -> Result<SearchRequest, QueryError> {
    SearchRequest::from_json(&body)
}

fn field_of(body: Value) -> (Option<String>, &'static str) {
    let err = parse(body).unwrap_err();
    (err.field().map(str::to_string), err.code())
}

#[test]
fn minimal_request_takes_the_defaults() {
    let req = parse(json!({"query": "  what is CVaR? "})).unwrap();
    assert_eq!(
        req,
        SearchRequest {
            query: "what is CVaR?".into(),
            k: DEFAULT_K,
            mode: SearchMode::Hybrid,
            scopes: vec![],
            filter: MetadataFilter::default(),
            embedding: None,
            group_by: None,
        }
    );
    let nulls =
        parse(json!({"query": "x", "k": null, "mode": null, "scope": null, "filter": null}))
            .unwrap();
    assert_eq!(
        (nulls.k, nulls.mode, nulls.scopes.len()),
        (DEFAULT_K, SearchMode::Hybrid, 0)
    );
}

#[test]
fn full_request_is_parsed() {
    let req = parse(json!({
        "query": "XNPV vs NPV",
        "k": 50,
        "mode": "Text",
        "scope": ["global", "tenant:acme", "global", "page:/sheets/7"],
        "filter": {"sector": "energy", "year": 2024}
    }))
    .unwrap();
    assert_eq!(req.k, 50);
    assert_eq!(req.mode, SearchMode::Text);
    assert_eq!(
        req.scopes,
        [
            Scope::Global,
            Scope::Tenant("acme".into()),
            Scope::Page("/sheets/7".into())
        ]
    );
    assert_eq!(
        req.filter.to_json(),
        json!({"sector": "energy", "year": 2024})
    );
    assert_eq!(
        parse(json!({"query": "q", "scope": "curated"}))
            .unwrap()
            .scopes,
        [Scope::Curated]
    );
}

#[test]
fn k_must_be_an_integer_in_range() {
    for k in [json!(1), json!(25), json!(50)] {
        assert!(parse(json!({"query": "q", "k": k})).is_ok(), "{k}");
    }
    for k in [
        json!(0),
        json!(51),
        json!(-3),
        json!(u64::MAX),
        json!(1_000_000),
    ] {
        assert_eq!(
            field_of(json!({"query": "q", "k": k})),
            (Some("k".into()), "out_of_range"),
            "{k}"
        );
    }
    for k in [json!(2.5), json!(5.0), json!("5"), json!(true), json!([5])] {
        assert_eq!(
            field_of(json!({"query": "q", "k": k})),
            (Some("k".into()), "invalid_type"),
            "{k}"
        );
    }
    let msg = parse(json!({"query": "q", "k": 0}))
        .unwrap_err()
        .to_string();
    assert_eq!(msg, "`k` must be an integer from 1 to 50; got 0");
}

#[test]
fn unknown_mode_names_the_field() {
    let err = parse(json!({"query": "q", "mode": "semantic"})).unwrap_err();
    assert_eq!(
        err,
        QueryError::UnknownMode {
            given: "semantic".into()
        }
    );
    assert_eq!((err.field(), err.code()), (Some("mode"), "invalid_value"));
    assert_eq!(
        err.to_string(),
        "unknown mode `semantic`; expected one of: hybrid, vector, text"
    );
    assert_eq!(
        field_of(json!({"query": "q", "mode": 3})),
        (Some("mode".into()), "invalid_type")
    );
    for (text, mode) in [
        ("hybrid", SearchMode::Hybrid),
        ("VECTOR", SearchMode::Vector),
        (" text ", SearchMode::Text),
    ] {
        assert_eq!(text.parse::<SearchMode>(), Ok(mode));
    }
    assert!(SearchMode::Hybrid.uses_text() && SearchMode::Hybrid.uses_vector());
    assert!(!SearchMode::Vector.uses_text() && !SearchMode::Text.uses_vector());
}

#[test]
fn query_is_required_non_blank_and_bounded() {
    assert_eq!(field_of(json!({})), (Some("query".into()), "missing_field"));
    assert_eq!(
        field_of(json!({"query": null})),
        (Some("query".into()), "missing_field")
    );
    assert_eq!(
        field_of(json!({"query": " \n\t"})),
        (Some("query".into()), "invalid_value")
    );
    assert_eq!(
        field_of(json!({"query": 42})),
        (Some("query".into()), "invalid_type")
    );
    assert_eq!(
        field_of(json!({"query": "é".repeat(2001)})),
        (Some("query".into()), "out_of_range")
    );
    assert!(parse(json!({"query": "é".repeat(2000)})).is_ok());
}

#[test]
fn scope_errors_name_the_field() {
    for scope in [
        json!("everything"),
        json!(["global", "tenant:"]),
        json!(["global", 7]),
        json!({"a": 1}),
        json!(3),
    ] {
        assert_eq!(
            field_of(json!({"query": "q", "scope": scope})).0.as_deref(),
            Some("scope"),
            "{scope}"
        );
    }
    let many: Vec<String> = (0..17).map(|i| format!("tenant:t{i}")).collect();
    assert_eq!(
        field_of(json!({"query": "q", "scope": many})),
        (Some("scope".into()), "out_of_range")
    );
}

#[test]
fn filter_errors_name_the_key() {
    assert_eq!(
        field_of(json!({"query": "q", "filter": {"tags": ["a"]}})),
        (Some("filter.tags".into()), "invalid_value")
    );
    assert_eq!(
        field_of(json!({"query": "q", "filter": "sector=energy"})),
        (Some("filter".into()), "invalid_type")
    );
}

#[test]
fn unknown_fields_and_non_objects_are_refused() {
    assert_eq!(
        field_of(json!({"query": "q", "mdoe": "text"})),
        (Some("mdoe".into()), "invalid_request")
    );
    let err = parse(json!(["query"])).unwrap_err();
    assert_eq!((err.field(), err.code()), (None, "invalid_request"));
}

#[test]
fn raw_bodies_report_utf8_and_json_problems() {
    let err = SearchRequest::from_json_bytes(b"{\"query\": \"\xff\"}").unwrap_err();
    assert_eq!(err, QueryError::InvalidUtf8);
    let err = SearchRequest::from_json_bytes(b"{\"query\": ").unwrap_err();
    assert_eq!((err.field(), err.code()), (None, "invalid_json"));
    assert!(
        err.to_string()
            .starts_with("the request body is not valid JSON: ")
    );
    assert_eq!(
        SearchRequest::from_json_bytes(br#"{"query":"beta"}"#)
            .unwrap()
            .query,
        "beta"
    );
}

#[test]
fn the_first_problem_in_field_order_is_reported() {
    let err = parse(json!({"query": "", "k": 0, "mode": "x"})).unwrap_err();
    assert_eq!(err, QueryError::EmptyQuery);
    let err = parse(json!({"query": "q", "k": 0, "mode": "x"})).unwrap_err();
    assert_eq!(err.field(), Some("k"));
}

#[test]
fn a_given_embedding_is_384_finite_numbers() {
    let v: Vec<f64> = (0..384).map(|i| i as f64 / 384.0).collect();
    let req = parse(json!({"query": "x", "embedding": v})).unwrap();
    assert_eq!(req.embedding.as_ref().map(Vec::len), Some(384));
    assert_eq!(
        field_of(json!({"query": "x", "embedding": [0.1, 0.2]})),
        (Some("embedding".into()), "invalid_value")
    );
    assert_eq!(
        field_of(json!({"query": "x", "embedding": "0.1,0.2"})),
        (Some("embedding".into()), "invalid_type")
    );
    let mut bad: Vec<Value> = v.iter().map(|x| json!(x)).collect();
    bad[7] = json!("NaN");
    assert_eq!(
        field_of(json!({"query": "x", "embedding": bad})),
        (Some("embedding".into()), "invalid_type")
    );
}

#[test]
fn huge_values_are_not_echoed_whole() {
    let huge = "x".repeat(7 << 20);
    for (body, field) in [
        (json!({"query": "q", "scope": huge}), "scope"),
        (json!({"query": "q", "mode": huge}), "mode"),
    ] {
        let err = SearchRequest::from_json(&body).unwrap_err();
        assert_eq!(err.field(), Some(field));
        let message = err.to_string();
        assert!(message.len() < 200, "{field}: {} bytes", message.len());
        assert!(message.contains('…'), "{message}");
    }
}

#[test]
fn group_by_document_only() {
    let req = parse(json!({"query": "x", "group_by": "document"})).unwrap();
    assert_eq!(req.group_by, Some(GroupBy::Document));
    assert_eq!(
        field_of(json!({"query": "x", "group_by": "page"})),
        (Some("group_by".into()), "invalid_value")
    );
    assert_eq!(
        field_of(json!({"query": "x", "group_by": 1})),
        (Some("group_by".into()), "invalid_type")
    );
}

#[test]
fn a_scope_naming_another_tenant_is_refused() {
    let req = parse(json!({"query": "x", "scope": ["global", "tenant:acme"]})).unwrap();
    assert!(req.check_tenant("acme").is_ok());
    let err = req.check_tenant("other").unwrap_err();
    assert_eq!((err.field(), err.code()), (Some("scope"), "foreign_tenant"));
}
