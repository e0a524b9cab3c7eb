-- Usage sync to a hub: per-user traffic written by each flush, waiting to be batched, and
-- the batches, each with the sync_id it keeps on every retry, until the hub answers 200.
CREATE TABLE usage_deltas (
    id          BIGSERIAL PRIMARY KEY,
    user_id     TEXT NOT NULL,
    uploaded    BIGINT NOT NULL,
    downloaded  BIGINT NOT NULL
);
CREATE TABLE usage_batches (
    id          BIGSERIAL PRIMARY KEY,
    sync_id     TEXT NOT NULL UNIQUE,                    -- 32 hex
    deltas      TEXT NOT NULL,                           -- JSON: {"USER": {"Uploaded": N, "Downloaded": N}}
    set_aside   INTEGER,                                 -- the 4xx status that set it aside; NULL: waiting
    created_at  DOUBLE PRECISION NOT NULL
);
-- which process sends the batches (trackers sharing one database): a lease it renews each tick
CREATE TABLE usage_sender (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    until       DOUBLE PRECISION NOT NULL
);
