use super::*;

fn err(spec: &str, n: usize) -> String {
    format!("{:#}", Latency::parse(spec, n).unwrap_err())
}

#[test]
fn uniform_sets_every_link_but_the_diagonal() {
    let l = Latency::parse("uniform:2.5", 3).unwrap();
    assert_eq!(
        l.one_way_us,
        vec![
            vec![0, 2500, 2500],
            vec![2500, 0, 2500],
            vec![2500, 2500, 0]
        ]
    );
    assert_eq!(l.max(), Duration::from_micros(2500));
}

#[test]
fn an_inline_matrix_is_read_by_rows_and_may_be_asymmetric() {
    let l = Latency::parse("matrix:0,10,20;11,0,30;21,31,0", 3).unwrap();
    assert_eq!(l.one_way(0, 1), Duration::from_millis(10));
    assert_eq!(l.one_way(1, 0), Duration::from_millis(11));
    assert_eq!(l.one_way(2, 1), Duration::from_millis(31));
}

#[test]
fn a_matrix_file_has_a_row_a_line_and_comments() {
    let dir = std::env::temp_dir().join(format!("gpaxos-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("m.txt");
    std::fs::write(&f, "# one-way ms\n0 5\n7 0  # n2 to n1\n").unwrap();
    let l = Latency::parse(&format!("matrix:{}", f.display()), 2).unwrap();
    assert_eq!(l.one_way_us, vec![vec![0, 5000], vec![7000, 0]]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn regions_take_the_tables_delays() {
    let l = Latency::parse("regions:us-east=n1,n2;eu-west=n3,n4;ap-northeast=n5", 5).unwrap();
    let us = |i: usize, j: usize| l.one_way_us[i][j];
    assert_eq!(us(0, 1), regions::SAME_REGION_US);
    assert_eq!(us(0, 2), 40_250, "us-east to eu-west: 80.5 ms round trip");
    assert_eq!(us(2, 4), 106_200, "eu-west to ap-northeast: 212.4 ms");
    assert_eq!(us(4, 0), 72_650, "ap-northeast to us-east: 145.3 ms");
    assert_eq!(us(3, 3), 0);
}

#[test]
fn mistakes_are_named() {
    assert!(err("5", 3).contains("expected uniform:MS"));
    assert!(err("uniform:x", 3).contains("not a number"));
    assert!(err("uniform:-1", 3).contains("outside"));
    assert!(err("matrix:0,1;1,0", 3).contains("2 rows for 3 nodes"));
    assert!(err("matrix:0,1,2;1,0;2,1,0", 3).contains("row 2 has 2 entries"));
    assert!(err("matrix:0,1;1,3", 2).contains("must be 0"));
    assert!(err("matrix:/no/such/file", 2).contains("cannot read"));
    assert!(err("regions:mars=n1,n2", 2).contains("unknown region \"mars\""));
    assert!(err("regions:us-east=n1,n9", 2).contains("not a node of n1..n2"));
    assert!(err("regions:us-east=n1;eu-west=n1,n2", 2).contains("n1 is named twice"));
    assert!(err("regions:us-east=n1", 2).contains("n2 is in no region"));
    assert!(err("regions:us-east", 2).contains("is not NAME=n1"));
}
