//! A workbook of cells evaluated as a spreadsheet would: every formula parsed (errors with
//! their position), references resolved (empty cells and unknown sheets reported), the
//! dependency graph ordered (strongly connected components: a circular reference is reported
//! with its cells and evaluates to `#CIRCULAR!`, as do cells that depend on it), each cell
//! evaluated after the cells it reads, and claimed values checked within a tolerance.

use std::collections::{BTreeMap, HashMap};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::ParseError;
use super::address::{Addr, CellRef, quote_sheet};
use super::eval::{Cells, eval};
use super::parser::{Expr, ExprRef, parse, references};
use super::value::{ErrorKind, Value};
use crate::limits::{LimitHit, Limits};

/// The sheet that `cells` fills and that unqualified claims name.
pub const DEFAULT_SHEET: &str = "Sheet1";
pub const DEFAULT_TOLERANCE: f64 = 1e-9;

/// `POST /v1/validate/formula`'s body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FormulaSheetRequest")]
pub struct SheetRequest {
    /// Cells of the default sheet: address → number, text, boolean, or a formula (`"=…"`).
    #[serde(default)]
    #[schemars(schema_with = "cells_schema")]
    pub cells: BTreeMap<String, Json>,
    /// Further sheets by name, each like `cells`.
    #[serde(default)]
    #[schemars(schema_with = "sheets_schema")]
    pub sheets: BTreeMap<String, BTreeMap<String, Json>>,
    /// Values the caller expects: `A1` (default sheet) or `Sheet!A1` → number, text or boolean.
    #[serde(default)]
    #[schemars(schema_with = "claims_schema")]
    pub claims: BTreeMap<String, Json>,
    /// Relative tolerance for numeric claims (absolute below 1): `|actual − claimed| ≤
    /// tolerance × max(1, |claimed|)`.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tolerance: Option<f64>,
}

// The cells and claims are read as JSON values by `evaluate` (a cell: number, text, boolean,
// null for empty, or a formula `"=…"`; a claim: number, text or boolean), so their schemas
// are written here from that reading.
fn cells_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Cell address (`A1` … `XFD1048576`) → number, text, boolean, null (empty) or a formula (`\"=…\"`)",
        "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
    })
}

fn sheets_schema(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Sheet name → its cells, like `cells`",
        "additionalProperties": cells_schema(generator),
    })
}

fn claims_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "`A1` (default sheet) or `Sheet!A1` → the value expected there",
        "additionalProperties": {"type": ["number", "string", "boolean"]},
    })
}

/// A request that cannot be evaluated, naming the field at fault.
#[derive(Debug, Clone, PartialEq)]
pub enum SheetError {
    Invalid { field: String, message: String },
    Limit(LimitHit),
}

#[derive(Debug, Serialize)]
pub struct SheetReport {
    /// No parse errors, cycles, error values, missing references or mismatched claims.
    pub valid: bool,
    /// Every cell in evaluation order (dependencies first).
    pub cells: Vec<CellResult>,
    pub parse_errors: Vec<CellParseError>,
    pub circular: Vec<Cycle>,
    pub empty_references: Vec<MissingReference>,
    pub missing_sheets: Vec<MissingReference>,
    /// Cells whose value is an error (`#DIV/0!`, `#NUM!`, …) other than parse and cycle errors.
    pub errors: Vec<CellError>,
    pub claims: Vec<ClaimResult>,
}

#[derive(Debug, Serialize)]
pub struct CellResult {
    pub cell: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    pub value: Json,
}

#[derive(Debug, Serialize)]
pub struct CellParseError {
    pub cell: String,
    /// 1-based character position in the cell's text (the `=` is 1).
    pub position: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitHit>,
}

#[derive(Debug, Serialize)]
pub struct Cycle {
    pub cells: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MissingReference {
    pub cell: String,
    pub reference: String,
}

#[derive(Debug, Serialize)]
pub struct CellError {
    pub cell: String,
    pub error: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ClaimResult {
    pub cell: String,
    pub claimed: Json,
    pub actual: Json,
    pub matches: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<f64>,
}

enum Content {
    Literal(Value),
    Formula(String, Result<Expr, ParseError>),
}

struct Node {
    sheet: usize,
    addr: Addr,
    content: Content,
}

type Key = (usize, u32, u32);

struct Book {
    sheet_names: Vec<String>,
    sheet_index: HashMap<String, usize>,
    nodes: Vec<Node>,
    /// (sheet, row, col) → node: row-major, so a range reads its cells row by row.
    grid: BTreeMap<Key, usize>,
}

impl Book {
    fn name(&self, node: usize) -> String {
        let n = &self.nodes[node];
        format!("{}!{}", quote_sheet(&self.sheet_names[n.sheet]), n.addr)
    }

    fn sheet_of(&self, r: &CellRef, home: usize) -> Option<usize> {
        match &r.sheet {
            None => Some(home),
            Some(s) => self.sheet_index.get(&s.to_lowercase()).copied(),
        }
    }

    /// The defined cells of a rectangle, row by row, charged to `reads`.
    fn rectangle(
        &self,
        sheet: usize,
        a: Addr,
        b: Addr,
        reads: &mut Budget,
    ) -> Result<Vec<usize>, LimitHit> {
        let (r1, r2) = (a.row.min(b.row), a.row.max(b.row));
        let (c1, c2) = (a.col.min(b.col), a.col.max(b.col));
        let mut out = Vec::new();
        for (&(_, _, col), &node) in self.grid.range((sheet, r1, 0)..=(sheet, r2, u32::MAX)) {
            reads.charge()?;
            if (c1..=c2).contains(&col) {
                out.push(node);
            }
        }
        Ok(out)
    }
}

struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    fn charge(&mut self) -> Result<(), LimitHit> {
        self.charge_many(1)
    }

    fn charge_many(&mut self, n: usize) -> Result<(), LimitHit> {
        self.used = self.used.saturating_add(n);
        if self.used > self.max {
            return Err(LimitHit {
                limit: "range_reads",
                max: self.max,
            });
        }
        Ok(())
    }
}

/// Evaluates a workbook request.
pub fn evaluate(req: &SheetRequest, limits: &Limits) -> Result<SheetReport, SheetError> {
    let book = load(req, limits)?;
    let mut budget = Budget {
        used: 0,
        max: limits.range_reads,
    };
    let mut empty_references = Vec::new();
    let mut missing_sheets = Vec::new();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); book.nodes.len()];
    for (i, node) in book.nodes.iter().enumerate() {
        let Content::Formula(_, Ok(expr)) = &node.content else {
            continue;
        };
        let mut refs = Vec::new();
        references(expr, &mut refs);
        for r in refs {
            let (first, second) = match &r {
                ExprRef::Cell(c) => (c, None),
                ExprRef::Range(a, b) => (a, Some(b)),
            };
            let shown = match second {
                None => format_ref(first),
                Some(b) => format!("{}:{}", format_ref(first), b.addr),
            };
            let Some(sheet) = book.sheet_of(first, node.sheet) else {
                missing_sheets.push(MissingReference {
                    cell: book.name(i),
                    reference: shown,
                });
                continue;
            };
            match second {
                None => match book.grid.get(&(sheet, first.addr.row, first.addr.col)) {
                    Some(&dep) => edges[i].push(dep),
                    None => empty_references.push(MissingReference {
                        cell: book.name(i),
                        reference: shown,
                    }),
                },
                Some(b) => edges[i].extend(
                    book.rectangle(sheet, first.addr, b.addr, &mut budget)
                        .map_err(SheetError::Limit)?,
                ),
            }
        }
    }

    let mut values = vec![Value::Empty; book.nodes.len()];
    let mut order = Vec::with_capacity(book.nodes.len());
    let mut circular = Vec::new();
    for component in strongly_connected(&edges) {
        let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
        if cyclic {
            let mut cells: Vec<usize> = component.clone();
            cells.sort_by_key(|&n| (book.nodes[n].sheet, book.nodes[n].addr));
            circular.push(Cycle {
                cells: cells.iter().map(|&n| book.name(n)).collect(),
            });
            for &n in &component {
                values[n] = Value::Error(ErrorKind::Circular);
            }
            order.extend(cells);
            continue;
        }
        let n = component[0];
        values[n] = match &book.nodes[n].content {
            Content::Literal(v) => v.clone(),
            Content::Formula(_, Err(_)) => Value::Error(ErrorKind::Parse),
            Content::Formula(_, Ok(expr)) => {
                let mut reader = Reader {
                    book: &book,
                    values: &values,
                    home: book.nodes[n].sheet,
                    budget: &mut budget,
                };
                let v = eval(expr, &mut reader).map_err(SheetError::Limit)?;
                if v == Value::Empty {
                    Value::Number(0.0)
                } else {
                    v
                }
            }
        };
        order.push(n);
    }

    let mut parse_errors = Vec::new();
    let mut errors = Vec::new();
    let mut cells = Vec::with_capacity(order.len());
    for &n in &order {
        let (formula, parsed) = match &book.nodes[n].content {
            Content::Formula(text, parsed) => (Some(text.clone()), Some(parsed)),
            Content::Literal(_) => (None, None),
        };
        if let Some(Err(e)) = parsed {
            parse_errors.push(CellParseError {
                cell: book.name(n),
                position: e.position,
                message: e.message.clone(),
                limit: e.limit.clone(),
            });
        }
        if let Value::Error(k) = &values[n]
            && !matches!(k, ErrorKind::Parse | ErrorKind::Circular)
        {
            errors.push(CellError {
                cell: book.name(n),
                error: k.code(),
            });
        }
        cells.push(CellResult {
            cell: book.name(n),
            formula,
            value: to_json(&values[n]),
        });
    }

    let tolerance = req.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    let mut claims = Vec::new();
    for (name, claimed) in &req.claims {
        let field = format!("claims.{name}");
        let (sheet, addr) = claim_cell(&book, name).ok_or_else(|| SheetError::Invalid {
            field: field.clone(),
            message: format!("{name:?} is not a cell of a sheet in this request"),
        })?;
        let actual = book
            .grid
            .get(&(sheet, addr.row, addr.col))
            .map_or(Value::Empty, |&n| values[n].clone());
        let (matches, difference) =
            claim_matches(claimed, &actual, tolerance).map_err(|m| SheetError::Invalid {
                field: field.clone(),
                message: m,
            })?;
        claims.push(ClaimResult {
            cell: format!("{}!{addr}", quote_sheet(&book.sheet_names[sheet])),
            claimed: claimed.clone(),
            actual: to_json(&actual),
            matches,
            difference,
        });
    }

    let valid = parse_errors.is_empty()
        && circular.is_empty()
        && empty_references.is_empty()
        && missing_sheets.is_empty()
        && errors.is_empty()
        && claims.iter().all(|c| c.matches);
    Ok(SheetReport {
        valid,
        cells,
        parse_errors,
        circular,
        empty_references,
        missing_sheets,
        errors,
        claims,
    })
}

fn format_ref(r: &CellRef) -> String {
    match &r.sheet {
        Some(s) => format!("{}!{}", quote_sheet(s), r.addr),
        None => r.addr.to_string(),
    }
}

fn load(req: &SheetRequest, limits: &Limits) -> Result<Book, SheetError> {
    let total = req.cells.len() + req.sheets.values().map(BTreeMap::len).sum::<usize>();
    if total > limits.cells {
        return Err(SheetError::Limit(LimitHit {
            limit: "cells",
            max: limits.cells,
        }));
    }
    let mut book = Book {
        sheet_names: Vec::new(),
        sheet_index: HashMap::new(),
        nodes: Vec::with_capacity(total),
        grid: BTreeMap::new(),
    };
    let mut sheets: Vec<(String, &BTreeMap<String, Json>, String)> = Vec::new();
    if !req.cells.is_empty() || req.sheets.is_empty() {
        sheets.push((DEFAULT_SHEET.into(), &req.cells, "cells".into()));
    }
    for (name, cells) in &req.sheets {
        let valid = !name.trim().is_empty()
            && name.chars().count() <= 31
            && !name.contains(['[', ']', ':', '*', '?', '/', '\\']);
        if !valid {
            return Err(SheetError::Invalid {
                field: format!("sheets.{name}"),
                message: "a sheet name is 1-31 characters without [ ] : * ? / \\".into(),
            });
        }
        sheets.push((name.clone(), cells, format!("sheets.{name}")));
    }
    for (name, cells, field) in sheets {
        let key = name.to_lowercase();
        if book.sheet_index.contains_key(&key) {
            return Err(SheetError::Invalid {
                field,
                message: format!("sheet {name:?} is given twice"),
            });
        }
        let sheet = book.sheet_names.len();
        book.sheet_index.insert(key, sheet);
        book.sheet_names.push(name);
        for (cell, raw) in cells {
            let field = format!("{field}.{cell}");
            let Some((addr, _, _)) = Addr::parse(cell.trim()) else {
                return Err(SheetError::Invalid {
                    field,
                    message: format!("{cell:?} is not a cell address (A1 … XFD1048576)"),
                });
            };
            let content = match raw {
                Json::Null => continue,
                Json::Number(n) => Content::Literal(Value::Number(n.as_f64().unwrap_or(0.0))),
                Json::Bool(b) => Content::Literal(Value::Bool(*b)),
                Json::String(s) if s.starts_with('=') => {
                    Content::Formula(s.clone(), parse(s, limits))
                }
                Json::String(s) => Content::Literal(Value::Text(s.clone())),
                _ => {
                    return Err(SheetError::Invalid {
                        field,
                        message: "a cell is a number, text, boolean, null or a formula \"=…\""
                            .into(),
                    });
                }
            };
            let key = (sheet, addr.row, addr.col);
            if book.grid.contains_key(&key) {
                return Err(SheetError::Invalid {
                    field,
                    message: format!("{cell:?} is given twice"),
                });
            }
            book.grid.insert(key, book.nodes.len());
            book.nodes.push(Node {
                sheet,
                addr,
                content,
            });
        }
    }
    Ok(book)
}

fn claim_cell(book: &Book, name: &str) -> Option<(usize, Addr)> {
    let (sheet, cell) = match name.rsplit_once('!') {
        Some((s, c)) => {
            let s = s
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .map_or(s.to_string(), |s| s.replace("''", "'"));
            (*book.sheet_index.get(&s.to_lowercase())?, c)
        }
        None => (*book.sheet_index.get(&DEFAULT_SHEET.to_lowercase())?, name),
    };
    Some((sheet, Addr::parse(cell.trim())?.0))
}

/// Whether `actual` is the claimed value: numbers within the tolerance, text and booleans equal.
fn claim_matches(
    claimed: &Json,
    actual: &Value,
    tolerance: f64,
) -> Result<(bool, Option<f64>), String> {
    Ok(match (claimed, actual) {
        (Json::Number(c), Value::Number(a)) => {
            let c = c.as_f64().unwrap_or(0.0);
            let diff = a - c;
            (diff.abs() <= tolerance * c.abs().max(1.0), Some(diff))
        }
        (Json::Number(_), _) => (false, None),
        (Json::String(c), Value::Text(a)) => (c == a, None),
        (Json::String(c), Value::Error(k)) => (c == k.code(), None),
        (Json::String(_), _) => (false, None),
        (Json::Bool(c), Value::Bool(a)) => (c == a, None),
        (Json::Bool(_), _) => (false, None),
        _ => return Err("a claimed value is a number, text or boolean".into()),
    })
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Number(x) => json!(x),
        Value::Text(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::Error(k) => json!({ "error": k.code() }),
        Value::Empty => Json::Null,
    }
}

struct Reader<'a> {
    book: &'a Book,
    values: &'a [Value],
    home: usize,
    budget: &'a mut Budget,
}

impl Cells for Reader<'_> {
    fn cell(&mut self, r: &CellRef) -> Value {
        let Some(sheet) = self.book.sheet_of(r, self.home) else {
            return Value::Error(ErrorKind::Ref);
        };
        self.book
            .grid
            .get(&(sheet, r.addr.row, r.addr.col))
            .map_or(Value::Empty, |&n| self.values[n].clone())
    }

    fn range(&mut self, a: &CellRef, b: &CellRef) -> Result<(Vec<Value>, u64), LimitHit> {
        let Some(sheet) = self.book.sheet_of(a, self.home) else {
            return Ok((vec![Value::Error(ErrorKind::Ref)], 1));
        };
        let size = u64::from(a.addr.row.abs_diff(b.addr.row) + 1)
            * u64::from(a.addr.col.abs_diff(b.addr.col) + 1);
        let nodes = self.book.rectangle(sheet, a.addr, b.addr, self.budget)?;
        Ok((
            nodes.iter().map(|&n| self.values[n].clone()).collect(),
            size,
        ))
    }

    fn charge(&mut self, reads: usize) -> Result<(), LimitHit> {
        self.budget.charge_many(reads)
    }
}

/// Tarjan's strongly connected components, iteratively (a 10,000-cell chain must not
/// overflow the stack). Edges point from a cell to the cells it reads, so each component
/// comes after every component it reads: the evaluation order.
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let (mut index, mut low) = (vec![UNSEEN; n], vec![0; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut out) = (Vec::new(), Vec::new());
    let mut next = 0;
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(&(v, e)) = calls.last() {
            if e < edges[v].len() {
                calls.last_mut().expect("non-empty").1 += 1;
                let w = edges[v][e];
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Json) -> SheetRequest {
        serde_json::from_value(body).unwrap()
    }

    fn run(body: Json) -> SheetReport {
        evaluate(&request(body), &Limits::default()).unwrap()
    }

    fn value(r: &SheetReport, cell: &str) -> Json {
        r.cells
            .iter()
            .find(|c| c.cell == cell)
            .unwrap_or_else(|| panic!("{cell} in {:?}", r.cells))
            .value
            .clone()
    }

    #[test]
    fn evaluates_in_dependency_order_across_sheets() {
        let r = run(json!({
            "cells": {"A3": "=A1+A2", "A1": 2, "A2": "=A1*10", "B1": "='My Data'!B2*2"},
            "sheets": {"My Data": {"B2": "=Sheet1!A3/2", "B3": "=SUM($B$2, 1)"}},
            "claims": {"A3": 22, "'My Data'!B2": 11.0000000001, "B1": 23}
        }));
        assert_eq!(value(&r, "Sheet1!A3"), json!(22.0));
        assert_eq!(value(&r, "'My Data'!B3"), json!(12.0));
        let pos = |c: &str| r.cells.iter().position(|x| x.cell == c).unwrap();
        assert!(pos("Sheet1!A1") < pos("Sheet1!A2") && pos("Sheet1!A2") < pos("Sheet1!A3"));
        assert!(pos("Sheet1!A3") < pos("'My Data'!B2") && pos("'My Data'!B2") < pos("Sheet1!B1"));
        assert!(r.claims[0].matches, "{:?}", r.claims);
        assert!(r.claims[1].matches, "within 1e-9: {:?}", r.claims);
        let b1 = r.claims.iter().find(|c| c.cell == "Sheet1!B1").unwrap();
        assert!(!b1.matches);
        assert_eq!(b1.difference, Some(-1.0));
        assert!(!r.valid);
    }

    #[test]
    fn reports_cycles_with_their_cells_and_what_depends_on_them() {
        let r = run(json!({"cells": {
            "A1": "=B1+1", "B1": "=C1", "C1": "=A1", "D1": "=D1", "E1": "=A1*2", "F1": 5
        }}));
        let mut cycles: Vec<Vec<String>> = r.circular.iter().map(|c| c.cells.clone()).collect();
        cycles.sort();
        assert_eq!(
            cycles,
            vec![
                vec![
                    "Sheet1!A1".to_string(),
                    "Sheet1!B1".into(),
                    "Sheet1!C1".into()
                ],
                vec!["Sheet1!D1".to_string()],
            ]
        );
        assert_eq!(value(&r, "Sheet1!E1"), json!({"error": "#CIRCULAR!"}));
        assert_eq!(value(&r, "Sheet1!F1"), json!(5.0));
        assert!(!r.valid);
    }

    #[test]
    fn reports_empty_references_missing_sheets_and_parse_errors() {
        let r = run(json!({"cells": {
            "A1": "=Z9+1", "A2": "=Nowhere!A1", "A3": "=SUM(1,", "A4": "=A3*2", "A5": "=1/0",
            "A6": "=SUM(Z1:Z9)"
        }}));
        assert_eq!(r.empty_references.len(), 1);
        assert_eq!(r.empty_references[0].reference, "Z9");
        assert_eq!(value(&r, "Sheet1!A1"), json!(1.0));
        assert_eq!(r.missing_sheets[0].reference, "Nowhere!A1");
        assert_eq!(value(&r, "Sheet1!A2"), json!({"error": "#REF!"}));
        assert_eq!(r.parse_errors[0].cell, "Sheet1!A3");
        assert_eq!(r.parse_errors[0].position, 8);
        assert_eq!(value(&r, "Sheet1!A4"), json!({"error": "#ERROR!"}));
        let errs: Vec<&str> = r.errors.iter().map(|e| e.error).collect();
        assert!(errs.contains(&"#DIV/0!"), "{errs:?}");
        assert_eq!(
            value(&r, "Sheet1!A6"),
            json!(0.0),
            "an empty range sums to 0 unreported"
        );
    }

    #[test]
    fn financial_functions_over_ranges() {
        let r = run(json!({"cells": {
            "A1": -1000, "A2": 300, "A3": 400, "A4": 500,
            "B1": "=IRR(A1:A4)", "B2": "=NPV(B1, A2:A4) + A1",
            "C1": 45000, "C2": 45365, "D1": -100, "D2": 110, "B3": "=XIRR(D1:D2, C1:C2)",
            "B4": "=ROUND(PMT(0.06/12, 360, 200000), 2)"
        }, "claims": {"B2": 0, "B3": 0.1, "B4": -1199.1}}));
        assert!(r.claims.iter().all(|c| c.matches), "{:?}", r.claims);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let e = evaluate(&request(json!({"cells": {"A0": 1}})), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, SheetError::Invalid { field, .. } if field == "cells.A0"),
            "{e:?}"
        );
        let e = evaluate(&request(json!({"cells": {"A1": [1]}})), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, SheetError::Invalid { field, .. } if field == "cells.A1"),
            "{e:?}"
        );
        let e = evaluate(
            &request(json!({"cells": {"A1": 1}, "claims": {"Other!A1": 1}})),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, SheetError::Invalid { field, .. } if field == "claims.Other!A1"),
            "{e:?}"
        );
        let e = evaluate(&request(json!({"sheets": {"a/b": {}}})), &Limits::default()).unwrap_err();
        assert!(
            matches!(&e, SheetError::Invalid { field, .. } if field == "sheets.a/b"),
            "{e:?}"
        );
    }

    #[test]
    fn limits_are_named() {
        let limits = Limits {
            cells: 3,
            ..Limits::default()
        };
        let e = evaluate(
            &request(json!({"cells": {"A1": 1, "A2": 2, "A3": 3, "A4": 4}})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(
            e,
            SheetError::Limit(LimitHit {
                limit: "cells",
                max: 3
            })
        );
        let limits = Limits {
            range_reads: 50,
            ..Limits::default()
        };
        let mut cells = serde_json::Map::new();
        for i in 1..=20 {
            cells.insert(format!("A{i}"), json!(i));
            cells.insert(format!("B{i}"), json!("=SUM(A1:A20)"));
        }
        let e = evaluate(&request(json!({"cells": cells})), &limits).unwrap_err();
        assert_eq!(
            e,
            SheetError::Limit(LimitHit {
                limit: "range_reads",
                max: 50
            })
        );
        // Iterative solvers are charged for their work too: 200 IRRs over 100 flows each.
        let limits = Limits {
            range_reads: 1_000_000,
            ..Limits::default()
        };
        let mut cells = serde_json::Map::new();
        for i in 1..=100 {
            cells.insert(format!("A{i}"), json!(if i == 1 { -1000 } else { 20 }));
        }
        for i in 1..=200 {
            cells.insert(format!("B{i}"), json!("=IRR(A1:A100)"));
        }
        let e = evaluate(&request(json!({"cells": cells})), &limits).unwrap_err();
        assert_eq!(
            e,
            SheetError::Limit(LimitHit {
                limit: "range_reads",
                max: 1_000_000
            })
        );
    }

    #[test]
    fn a_long_chain_evaluates_without_recursion() {
        let mut cells = serde_json::Map::new();
        cells.insert("A1".into(), json!(1));
        for i in 2..=10_000 {
            cells.insert(format!("A{i}"), json!(format!("=A{}+1", i - 1)));
        }
        let r = run(json!({"cells": cells, "claims": {"A10000": 10000}}));
        assert!(r.valid, "{:?}", r.claims);
    }
}
