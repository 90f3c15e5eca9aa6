-- Whether a printer has ever answered a status request. A printer that did, and now does
-- not, is busy or hung: its jobs wait. Only a printer that never answered (a status-less
-- clone, a Star model) gets jobs it cannot confirm. Reset when its connection or profile
-- changes (a replaced printer is learned afresh).
ALTER TABLE printers ADD COLUMN answers_status INTEGER NOT NULL DEFAULT 0;
