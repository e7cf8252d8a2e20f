-- Why an assistant message's answer ended (issue 20): 'complete', or 'length' when the answer
-- shown holds a draft or synthesis the output limit cut off (shown with a `truncated` event
-- because no provider completed it). The status stays 'completed' — the turn ran to its end —
-- but such a message is not a complete answer, and none of its steps' answers is cached.
-- Null for messages that failed or were cancelled, user messages and older rows.
ALTER TABLE messages ADD COLUMN finish_reason text;
