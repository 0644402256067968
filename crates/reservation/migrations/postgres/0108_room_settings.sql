-- Each show's on-sale time and waiting room, as the waiting room announced them
-- (RoomSettingsChanged; runtime::door): holds and orders are checked against them.
CREATE TABLE room_settings (
    event_id   BIGINT PRIMARY KEY,
    on_sale_at BIGINT,
    enabled    BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
