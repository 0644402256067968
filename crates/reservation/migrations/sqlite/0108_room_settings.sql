-- Each show's on-sale time and waiting room, as the waiting room announced them
-- (RoomSettingsChanged; runtime::door): holds and orders are checked against them.
CREATE TABLE room_settings (
    event_id   INTEGER PRIMARY KEY,
    on_sale_at INTEGER,
    enabled    INTEGER NOT NULL,
    version    INTEGER NOT NULL
);
