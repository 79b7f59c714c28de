-- Exactly-once Slack messages across crashes: a message's post is marked as requested before
-- `chat.postMessage` is sent, and the message carries its key in Slack's message metadata. A
-- retry of a job that died between Slack's answer and recording the `ts` looks the message up in
-- the channel (or its thread) by that key instead of posting it again; a job that never sent it
-- skips the lookup.
ALTER TABLE slack_messages ADD COLUMN post_requested_at TIMESTAMPTZ;
