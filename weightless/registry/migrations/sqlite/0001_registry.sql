CREATE TABLE registry (
    info_hash     TEXT PRIMARY KEY,          -- 64 hex (v2 SHA-256) or 40 hex (v1-only SHA-1)
    v1_info_hash  TEXT UNIQUE,               -- 40 hex, hybrid torrents
    name          TEXT NOT NULL,
    verified      INTEGER NOT NULL DEFAULT 0,
    completions   INTEGER NOT NULL DEFAULT 0,
    description   TEXT,
    publisher     TEXT,
    license       TEXT,
    size          INTEGER,
    category      TEXT,
    tags          TEXT,
    torrent_data  BLOB,
    seeders       INTEGER NOT NULL DEFAULT 0,  -- snapshot of live counts, for sort=seeders
    leechers      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX registry_created_at ON registry (created_at);
CREATE INDEX registry_completions ON registry (completions);
CREATE INDEX registry_seeders ON registry (seeders);
CREATE INDEX registry_category ON registry (category);
CREATE INDEX registry_publisher ON registry (publisher);

CREATE TABLE blocklist (
    info_hash   TEXT PRIMARY KEY,            -- 40 or 64 hex
    reason      TEXT NOT NULL DEFAULT '',
    blocked_at  REAL NOT NULL
);

CREATE TABLE users (
    user_id     TEXT PRIMARY KEY,
    uploaded    INTEGER NOT NULL DEFAULT 0,
    downloaded  INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);
