//! `tessera-gateway`: the cost-aware model gateway of the chat step, **sans-IO**.
//!
//! Spin components are stateless WebAssembly: any request may run in a fresh instance, so
//! breaker state, budgets and cached answers live in Postgres, and outbound HTTP goes through
//! spin-sdk in the component. This crate therefore does no I/O, reads no clock, draws no
//! random numbers and never sleeps. The caller passes `now`, random numbers and stored state
//! in, and gets decisions, requests to send and state to store back out. The same code runs
//! natively (tests, benchmarks, the local test doubles) and in `wasm32-wasip2` components.
//!
//! Modules, one job each:
//! - [`providers`]: wire formats. [`providers::build_request`] turns a [`ChatRequest`] into an
//!   [`HttpRequest`]; a [`ProviderStream`] turns response bytes, split anywhere, into
//!   [`StreamEvent`]s ending in a [`FinishReason`] or a classified [`ProviderError`];
//!   [`StreamedAnswer`] gathers them and says whether the answer is complete;
//!   [`providers::sse`] is the shared SSE decoder and encoder.
//! - [`catalog`]: providers, models, tiers and prices; [`Catalog::cost`] in micro-dollars.
//! - [`routing`]: the fallback chain for a step (complexity, plan, budget, keys, breakers).
//! - [`retry`]: backoff with full jitter, `Retry-After`, attempts and deadline.
//! - [`breaker`]: the circuit breaker per provider as a serialisable state machine.
//! - [`cache`]: exact keys, semantic matching and TTLs for the response cache.
//! - [`local`]: the extractive answerer that needs no model.
//! - [`usage`]: token estimates and the `llm_calls` record.
//!
//! # One call's lifecycle
//!
//! ```
//! use tessera_gateway::*;
//!
//! // 1. Route: which models may answer this step, in which order, and why.
//! let catalog = Catalog::builtin();
//! let statuses = [ProviderStatus { provider: "openai".into(), platform_key: true, user_key: false, breaker_allows: true }];
//! let decision = route(&catalog, &RoutingPolicy::default(), &RouteInput {
//!     complexity: 0.2,
//!     user_tier: UserTier::Free,
//!     month_tokens: 0,
//!     month_cost_micros: 0,
//!     budget_micros: None,
//!     estimated_usage: Usage::new(800, 300),
//!     providers: &statuses,
//!     pinned: None,
//! });
//! let first = decision.chain()[0];
//! assert_eq!((first.provider.as_str(), first.model.as_str()), ("openai", "gpt-4o-mini"));
//!
//! // 2. Build the request; the component sends it with spin-sdk.
//! let provider = catalog.provider(&first.provider).unwrap();
//! let endpoint = provider.endpoint(Some("sk-from-a-spin-variable".into()));
//! let request = ChatRequest::new(&first.model, vec![Message::user("What is EBITDA?")]);
//! let http = build_request(&endpoint, &request).unwrap();
//! assert_eq!(http.url, "https://api.openai.com/v1/chat/completions");
//!
//! // 3. Feed the body as it arrives, in whatever chunks the network delivers.
//! let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Earnings before\"}}]}\n\n\
//!             data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
//!             data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}\n\n\
//!             data: [DONE]\n\n";
//! let mut stream = ProviderStream::new(provider.kind).unwrap();
//! let mut answer = StreamedAnswer::new();
//! for chunk in body.as_bytes().chunks(7) {
//!     stream.feed(chunk).unwrap().into_iter().for_each(|e| answer.push(e));
//! }
//! stream.finish().unwrap().into_iter().for_each(|e| answer.push(e));
//! assert_eq!(answer.text, "Earnings before");
//! // Why it stopped decides what the answer is: only a complete one is shown as such and
//! // cached; a cut-off (`length`), refused, filtered or empty one is a
//! // `CallFailure::Unfinished` for `retry::decide`.
//! assert_eq!(answer.finish, Some(FinishReason::Complete));
//! assert!(answer.is_complete());
//!
//! // 4. Usage and cost, for the `llm_calls` row. (A call that fails part-way bills what
//! // `stream.reported_usage()` says the provider reported, estimating only the rest.)
//! let usage = answer.usage.unwrap();
//! let cost = catalog.cost(&first.provider, &first.model, usage).unwrap();
//! assert_eq!(cost, 4); // 12 × $0.15/M + 3 × $0.60/M = 3.6 µ$, rounded up
//! let record = LlmCall::ok(&first.provider, &first.model, usage, cost, 420);
//! assert_eq!(record.status, CallStatus::Ok);
//!
//! // 5. Breaker update: load the provider's state, record the outcome, store it back.
//! let breaker = BreakerConfig::default();
//! let now_ms = 1_750_000_000_000;
//! let state = breaker.on_attempt(BreakerState::default(), now_ms);
//! let state = breaker.on_result(state, Outcome::Success, now_ms + 420);
//! assert!(breaker.allows(&state, now_ms + 500));
//!
//! // On a failure instead: `retry::decide` says wait and retry, fall back to the next
//! // candidate, or give up (an in-stream error as its HTTP equivalent, by `ErrorKind`);
//! // `CallFailure::is_provider_fault` says whether it counts against the breaker.
//! ```

pub mod breaker;
pub mod cache;
pub mod catalog;
pub mod local;
pub mod providers;
pub mod retry;
pub mod routing;
pub mod usage;

pub use breaker::{BreakerConfig, BreakerState, Outcome, Phase, UnixMillis};
pub use cache::{CacheEntry, CacheKey, CacheQuery, StepKind, exact_key, lookup, normalise_prompt};
pub use catalog::{Catalog, CatalogError, ModelConfig, ModelTier, Price, ProviderConfig};
pub use local::{LocalAnswer, LocalOptions, Passage};
pub use providers::{
    BuildError, ChatRequest, Endpoint, ErrorKind, FinishReason, HttpRequest, Message,
    ProviderError, ProviderKind, ProviderStream, StreamError, StreamEvent, StreamParser,
    StreamedAnswer, ToolCall, ToolSpec, build_request, is_complete_answer, parse_error_body,
};
pub use retry::{CallFailure, RetryDecision, RetryPolicy};
pub use routing::{
    Candidate, KeySource, ProviderStatus, RouteDecision, RouteInput, RoutingPolicy, SkipReason,
    UserTier, route,
};
pub use usage::{CacheHit, CallStatus, LlmCall, ReportedUsage, Usage, estimate_tokens};
