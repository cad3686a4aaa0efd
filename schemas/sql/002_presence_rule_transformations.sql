-- RFC 5025 §3.2.2 transformations, a first subset, per presence rule: what a watcher the
-- rule matches is shown of the presentity's document.
ALTER TABLE presence_rules ADD COLUMN hide_notes boolean NOT NULL DEFAULT false;
ALTER TABLE presence_rules ADD COLUMN hide_devices boolean NOT NULL DEFAULT false;
ALTER TABLE presence_rules ADD COLUMN basic_only boolean NOT NULL DEFAULT false;
