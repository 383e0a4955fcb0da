DROP TABLE delivery;
