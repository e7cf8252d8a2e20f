//! The financial functions agree with a reference implementation (numpy-financial; XNPV and
//! XIRR by definition) to 1e-9 relative, on the committed fixture that
//! fixtures/make_fixtures.py wrote. Each case is evaluated as a spreadsheet would: a formula
//! over cells, through the parser and the sheet evaluator.

use serde_json::{Value, json};
use tessera_validation::formula::sheet::{SheetRequest, evaluate};
use tessera_validation::limits::Limits;

#[test]
fn financial_functions_match_the_reference_fixtures() {
    let text = include_str!("../fixtures/financial.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let tolerance = fixture["relative_tolerance"].as_f64().unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "the fixture has its cases");
    let mut failures = Vec::new();
    for case in cases {
        let mut cells = case["cells"].as_object().unwrap().clone();
        cells.insert("Z1".into(), case["formula"].clone());
        let req: SheetRequest = serde_json::from_value(json!({ "cells": cells })).unwrap();
        let report = evaluate(&req, &Limits::default()).unwrap();
        let actual = &report
            .cells
            .iter()
            .find(|c| c.cell == "Sheet1!Z1")
            .unwrap()
            .value;
        let expected = case["expected"].as_f64().unwrap();
        let ok = actual
            .as_f64()
            .is_some_and(|a| (a - expected).abs() <= tolerance * expected.abs().max(1e-300));
        if !ok {
            failures.push(format!(
                "{}: {} = {actual}, expected {expected}",
                case["name"], case["formula"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
