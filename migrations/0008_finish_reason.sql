-- Why the model stopped (tessera-gateway's FinishReason::as_str: complete, length, tool_calls,
-- refusal, content_filter, error, unknown), for every call whose stream reached its end and
-- for every paid step. A call that ended but is not usable as complete (cut off, refused,
-- filtered, empty) has status 'incomplete' and is never cached. Null for calls that failed
-- before their end, cache hits, local answers and older rows.
ALTER TABLE llm_calls ADD COLUMN finish_reason text;
ALTER TABLE steps ADD COLUMN finish_reason text;
