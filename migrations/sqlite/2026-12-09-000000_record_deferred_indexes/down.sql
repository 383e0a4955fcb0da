DROP TABLE deferred_index;
