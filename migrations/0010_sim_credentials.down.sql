DROP TABLE sim_credentials;
