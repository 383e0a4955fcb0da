DROP TABLE actions;
DROP TABLE "groups";
DROP TABLE users;
DROP TABLE messages;
