-- Repositories (the entries with the same publisher and name), versions and model cards. Every
-- row already has created_at, the time it was first registered, which upserts keep.
ALTER TABLE registry ADD COLUMN version TEXT;           -- 1-64 of [A-Za-z0-9._+-]
ALTER TABLE registry ADD COLUMN card TEXT;              -- the model card, Markdown
-- a repository's versions newest first, and `name` searches, are one index read backwards
CREATE INDEX registry_repository ON registry (publisher, name, created_at, info_hash);
CREATE INDEX registry_name ON registry (name, created_at, info_hash);
