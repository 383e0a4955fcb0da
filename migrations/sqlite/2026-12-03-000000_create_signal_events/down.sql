DROP TABLE signal_event;
