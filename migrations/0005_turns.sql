-- Turns that never finish: the chat-sweep cron component (every minute) and the chat
-- component (before a post) mark messages still `running` after the stale threshold failed.
-- Running messages are few at any time, so a partial index keeps that scan to them alone.
CREATE INDEX messages_running ON messages (updated_at) WHERE status = 'running';
