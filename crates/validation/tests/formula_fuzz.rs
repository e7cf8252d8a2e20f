//! The formula parser and sheet evaluator over random inputs, for a fixed number of cases:
//! they return a value or a named error, and never panic or hang (a depth, length, token or
//! reading limit stops every input).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;
use tessera_validation::formula::parser::parse;
use tessera_validation::formula::sheet::{SheetRequest, evaluate};
use tessera_validation::limits::Limits;

/// Fragments a formula is made of, including malformed ones.
const PIECES: &[&str] = &[
    "A1",
    "$B$2",
    "C3:D9",
    "Sheet2!A1",
    "'My Sheet'!B2",
    "A1:A",
    "1",
    "0",
    "-",
    "+",
    "*",
    "/",
    "^",
    "%",
    "&",
    "=",
    "<>",
    "<=",
    ">",
    "(",
    ")",
    ",",
    ":",
    "\"txt\"",
    "\"",
    "TRUE",
    "FALSE",
    "#DIV/0!",
    "#N/A",
    "SUM(",
    "IF(",
    "IRR(",
    "XNPV(",
    "RATE(",
    "ROUND(",
    "AND(",
    "NPV(",
    "PMT(",
    "1e308",
    "1e-308",
    ".5",
    "9.99e999",
    "'",
    "!",
    "$",
    "ZZZ9",
    "XFD1048576",
    " ",
    "FOO(",
];

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Deterministic: the same cases every run.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        config(cases),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

fn token_stream() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..80)
        .prop_map(|parts| format!("={}", parts.concat()))
}

#[test]
fn parser_survives_random_token_streams() {
    let limits = Limits::default();
    runner(3_000)
        .run(&token_stream(), |formula| {
            match parse(&formula, &limits) {
                Ok(_) => {}
                Err(e) => {
                    let length = formula.chars().count() + 1;
                    prop_assert!(e.position >= 1 && e.position <= length, "{formula}: {e:?}");
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn parser_survives_random_strings() {
    let limits = Limits::default();
    runner(3_000)
        .run(&"=\\PC{0,200}", |formula| {
            let _ = parse(&formula, &limits);
            Ok(())
        })
        .unwrap();
}

#[test]
fn deep_and_long_inputs_hit_named_limits() {
    let limits = Limits::default();
    for formula in [
        format!("={}", "(".repeat(100_000)),
        format!("={}1", "-".repeat(100_000)),
        format!("={}", "SUM(".repeat(10_000)),
        format!("=1{}", "^1".repeat(3_000)),
        format!("={}", "1+".repeat(50_000)),
    ] {
        let e = parse(&formula, &limits).unwrap_err();
        assert!(e.limit.is_some(), "{}…: {e:?}", &formula[..20]);
    }
}

#[test]
fn sheets_of_random_formulas_evaluate() {
    let cell = prop::sample::select(&["A1", "A2", "B1", "B2", "C3", "D9"][..]);
    let sheet = prop::collection::btree_map(cell, token_stream(), 0..6);
    runner(1_000)
        .run(&sheet, |cells| {
            let req: SheetRequest = serde_json::from_value(json!({ "cells": cells })).unwrap();
            let report = evaluate(&req, &Limits::default());
            prop_assert!(report.is_ok(), "{report:?}");
            Ok(())
        })
        .unwrap();
}
