DROP TABLE sign_in_link;
