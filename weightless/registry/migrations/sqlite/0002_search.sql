-- Search: each sort order (all keys descending, ties broken by info_hash) is one index read
-- backwards, alone or after an exact category or publisher.
DROP INDEX registry_created_at;
DROP INDEX registry_completions;
DROP INDEX registry_seeders;
DROP INDEX registry_category;
DROP INDEX registry_publisher;
CREATE INDEX registry_created_at ON registry (created_at, info_hash);
CREATE INDEX registry_completions ON registry (completions, created_at, info_hash);
CREATE INDEX registry_seeders ON registry (seeders, created_at, info_hash);
CREATE INDEX registry_category ON registry (category, created_at, info_hash);
CREATE INDEX registry_publisher ON registry (publisher, created_at, info_hash);
