//! SYN cookies and TCP Fast Open cookies (in progress).
