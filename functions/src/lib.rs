//! Lambda entry points of AmanarCarbon.
