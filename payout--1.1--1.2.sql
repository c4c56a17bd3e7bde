/* payout--1.1--1.2.sql: update payout from version 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.2'" to load this file. \quit
