#include "mailwing/smtp/command.hh"

#include <gtest/gtest.h>

#include <string>

namespace mailwing::smtp {
namespace {

TEST(ParseCommand, VerbsAnyCase) {
  const std::pair<const char*, verb> cases[] = {
      {"HELO", verb::helo}, {"ehlo", verb::ehlo}, {"Mail", verb::mail}, {"rCpT", verb::rcpt},
      {"DATA", verb::data}, {"bdat", verb::bdat}, {"RSET", verb::rset}, {"noop", verb::noop},
      {"QUIT", verb::quit}, {"vrfy", verb::vrfy}, {"EXPN", verb::expn}, {"help", verb::help},
      {"AUTH", verb::auth}, {"StartTLS", verb::starttls},
  };
  for (const auto& [text, expected] : cases) EXPECT_EQ(parse_command(text).name, expected) << text;
}

TEST(ParseCommand, VerbMustEndAtSpaceOrEndOfLine) {
  EXPECT_EQ(parse_command("MAILX FROM:<>").name, verb::unknown);
  EXPECT_EQ(parse_command("MAI").name, verb::unknown);
  EXPECT_EQ(parse_command("QUIT:").name, verb::unknown);
  EXPECT_EQ(parse_command("").name, verb::unknown);
  EXPECT_EQ(parse_command(" QUIT").name, verb::unknown);
  EXPECT_EQ(parse_command("STARTTLSX").name, verb::unknown);
  EXPECT_EQ(parse_command("M\xc3\xa4IL").name, verb::unknown);
}

TEST(ParseCommand, Argument) {
  command c = parse_command("MAIL FROM:<a@b.example> SIZE=100");
  EXPECT_EQ(c.name, verb::mail);
  EXPECT_EQ(c.argument, "FROM:<a@b.example> SIZE=100");
  EXPECT_EQ(parse_command("EHLO   client.example \t ").argument, "client.example");
  EXPECT_EQ(parse_command("QUIT").argument, "");
  EXPECT_EQ(parse_command("QUIT   ").argument, "");
  EXPECT_EQ(parse_command("QUIT \t").name, verb::quit);
  EXPECT_EQ(parse_command("NOOP\t").name, verb::noop);
}

TEST(ParseCommand, NulMakesTheLineUnknown) {
  EXPECT_EQ(parse_command(std::string("QUIT\0", 5)).name, verb::unknown);
  EXPECT_EQ(parse_command(std::string("HELO a\0b", 8)).name, verb::unknown);
}

TEST(MailFrom, PlainPath) {
  mail_from m = parse_mail_from("FROM:<user@example.com>");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_FALSE(m.null_sender);
  EXPECT_EQ(m.sender.local_part, "user");
  EXPECT_EQ(m.sender.domain, "example.com");
  EXPECT_FALSE(m.size_bytes);
  EXPECT_EQ(m.body, body_type::unspecified);
  EXPECT_FALSE(m.smtputf8);
  EXPECT_EQ(parse_mail_from("from:<user@example.com>").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<user@example.com>  ").error, path_error::none);
}

TEST(MailFrom, NullSender) {
  mail_from m = parse_mail_from("FROM:<>");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_TRUE(m.null_sender);
  EXPECT_TRUE(m.sender.local_part.empty());
  EXPECT_TRUE(m.sender.domain.empty());
  EXPECT_EQ(parse_mail_from("FROM:<> SIZE=10").size_bytes, 10u);
}

TEST(MailFrom, SpacesBeforeThePathAreTolerated) {
  EXPECT_EQ(parse_mail_from("FROM: <a@b>").sender.domain, "b");
  EXPECT_EQ(parse_mail_from("FROM:   <a@b>").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM :<a@b>").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:\t<a@b>").error, path_error::syntax);
}

TEST(MailFrom, StructuralErrors) {
  EXPECT_EQ(parse_mail_from("").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("TO:<a@b>").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:a@b").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:a@b>").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b>SIZE=1").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b>>").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:").error, path_error::syntax);
}

TEST(MailFrom, BadAddresses) {
  const char* bad[] = {
      "FROM:<a>", "FROM:<@b>", "FROM:<a@>", "FROM:<a@b.>", "FROM:<a@.b>", "FROM:<a@b..c>",
      "FROM:<.a@b>", "FROM:<a.@b>", "FROM:<a..b@c>", "FROM:<a b@c>", "FROM:<a@-b>",
      "FROM:<a@b-.c>", "FROM:<a@b_c>", "FROM:<a(b)@c>", "FROM:<\"a\"b@c>", "FROM:<a\"b\"@c>",
      "FROM:<a@[1.2.3]>", "FROM:<a@[1.2.3.256]>", "FROM:<a@[1.2.3.4.5]>", "FROM:<a@[1234.1.1.1]>",
      "FROM:<a@[x]>", "FROM:<a@[tag:content]>", "FROM:<a@[IPv6:1:2:3:4:5:6:7]>",
      "FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", "FROM:<a@[IPv6:1::2::3]>", "FROM:<a@[IPv6:12345::]>",
      "FROM:<a@[IPv6:1:2:3:4:5:6:7::]>", "FROM:<a@[IPv6:1:2:3:4:5::1.2.3.4]>",
      "FROM:<a@[IPv6::1]>", "FROM:<a@[IPv6:1:]>", "FROM:<a@[IPv6:g::]>", "FROM:<a@[1.2.3.4>",
      "FROM:<postmaster>", "FROM:<\"a\\\x01\"@b>",
  };
  for (const char* argument : bad) {
    EXPECT_EQ(parse_mail_from(argument).error, path_error::bad_address) << argument;
  }
  std::string long_label = "FROM:<a@" + std::string(64, 'x') + ".example>";
  EXPECT_EQ(parse_mail_from(long_label).error, path_error::bad_address);
  std::string ok_label = "FROM:<a@" + std::string(63, 'x') + ".example>";
  EXPECT_EQ(parse_mail_from(ok_label).error, path_error::none);
}

TEST(MailFrom, AtextAndDotString) {
  mail_from m = parse_mail_from("FROM:<first.last+tag!#$%&'*/=?^_`{|}~-@sub-1.Example.COM>");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_EQ(m.sender.local_part, "first.last+tag!#$%&'*/=?^_`{|}~-");
  EXPECT_EQ(m.sender.domain, "sub-1.Example.COM");
  EXPECT_EQ(parse_mail_from("FROM:<a@localhost>").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<a@123.example>").error, path_error::none);
}

TEST(MailFrom, QuotedLocalPart) {
  mail_from m = parse_mail_from(R"(FROM:<"john \"jr\" doe @ x>"@example.com>)");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_EQ(m.sender.local_part, R"("john \"jr\" doe @ x>")");
  EXPECT_EQ(m.sender.domain, "example.com");
  EXPECT_EQ(parse_mail_from(R"(FROM:<""@example.com>)").error, path_error::none);
  EXPECT_EQ(parse_mail_from(R"(FROM:<"a\\b"@example.com>)").error, path_error::none);
  EXPECT_EQ(parse_mail_from(R"(FROM:<"a\"@example.com>)").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from(R"(FROM:<"a@example.com>)").error, path_error::syntax);  // unclosed
}

TEST(MailFrom, AddressLiterals) {
  const char* good[] = {
      "[192.0.2.1]", "[0.0.0.0]", "[255.255.255.255]", "[IPv6:2001:db8::1]", "[ipv6:::]",
      "[IPv6:::1]", "[IPv6:1:2:3:4:5:6:7:8]", "[IPv6:1:2:3:4:5:6:192.0.2.1]",
      "[IPv6:::ffff:192.0.2.1]", "[IPv6:1:2:3:4::192.0.2.1]", "[IPv6:1:2:3::4:5:6]",
      "[IPv6:fe80::]",
  };
  for (const char* literal : good) {
    std::string argument = std::string("FROM:<a@") + literal + ">";
    mail_from m = parse_mail_from(argument);
    EXPECT_EQ(m.error, path_error::none) << literal;
    EXPECT_EQ(m.sender.domain, std::string_view(literal));
  }
  // RFC 5321 allows at most 6 groups besides "::" (4 with an IPv4 tail).
  EXPECT_EQ(parse_mail_from("FROM:<a@[IPv6:1:2:3:4:5:6:7::]>").error, path_error::bad_address);
  EXPECT_EQ(parse_mail_from("FROM:<a@[IPv6:1:2:3:4::5:6:7]>").error, path_error::bad_address);
}

TEST(MailFrom, SourceRouteIsIgnored) {
  mail_from m = parse_mail_from("FROM:<@relay1.example,@relay2.example:user@c.example>");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_EQ(m.sender.local_part, "user");
  EXPECT_EQ(m.sender.domain, "c.example");
  EXPECT_EQ(parse_mail_from("FROM:<@a:u@c>").sender.local_part, "u");
  EXPECT_EQ(parse_mail_from("FROM:<@a,b:u@c>").error, path_error::bad_address);
  EXPECT_EQ(parse_mail_from("FROM:<@a u@c>").error, path_error::bad_address);
  EXPECT_EQ(parse_mail_from("FROM:<@:u@c>").error, path_error::bad_address);
  EXPECT_EQ(parse_mail_from("FROM:<@a,:u@c>").error, path_error::bad_address);
}

TEST(MailFrom, Size) {
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=0").size_bytes, 0u);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> size=12345").size_bytes, 12345u);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=18446744073709551615").size_bytes,
            UINT64_MAX);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=000000000000000000001").error,
            path_error::bad_parameter);  // 21 digits
  // Valid 20-digit sizes past 64 bits saturate: the session answers 552, not 501.
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=18446744073709551616").size_bytes, UINT64_MAX);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=99999999999999999999").size_bytes, UINT64_MAX);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=-1").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1k").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1 SIZE=2").error, path_error::bad_parameter);
}

TEST(MailFrom, Body) {
  EXPECT_EQ(parse_mail_from("FROM:<a@b> BODY=7BIT").body, body_type::seven_bit);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> body=8bitmime").body, body_type::eight_bit_mime);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> BODY=BINARYMIME").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> BODY").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> BODY=8BIT").error, path_error::bad_parameter);
}

TEST(MailFrom, SeveralParameters) {
  mail_from m = parse_mail_from("FROM:<a@b>  SIZE=42   BODY=8BITMIME SMTPUTF8 AUTH=<>  ");
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_EQ(m.size_bytes, 42u);
  EXPECT_EQ(m.body, body_type::eight_bit_mime);
  EXPECT_TRUE(m.smtputf8);
}

TEST(MailFrom, UnknownAndMalformedParameters) {
  EXPECT_EQ(parse_mail_from("FROM:<a@b> RET=HDRS").error, path_error::unknown_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> X-FOO").error, path_error::unknown_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1 FOO=1").error, path_error::unknown_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> -FOO").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> F_OO").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> =1").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1=2").error, path_error::syntax);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1\t").error, path_error::none);  // trailing blank
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SIZE=1\tBODY=7BIT").error, path_error::syntax);
}

TEST(MailFrom, SmtpUtf8) {
  const char* utf8_sender = "FROM:<j\xc3\xb6rg@b\xc3\xbc\x63her.example>";
  EXPECT_EQ(parse_mail_from(utf8_sender).error, path_error::bad_address);
  std::string with_smtputf8 = std::string(utf8_sender) + " SMTPUTF8";
  mail_from m = parse_mail_from(with_smtputf8);
  EXPECT_EQ(m.error, path_error::none);
  EXPECT_TRUE(m.smtputf8);
  EXPECT_EQ(m.sender.local_part, "j\xc3\xb6rg");
  EXPECT_EQ(parse_mail_from("FROM:<\"\xe2\x82\xac\"@b> SMTPUTF8").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> SMTPUTF8=yes").error, path_error::bad_parameter);
  EXPECT_TRUE(parse_mail_from("FROM:<a@b> smtputf8").smtputf8);
  // Malformed UTF-8 is no address even with SMTPUTF8: a lone continuation byte, an
  // overlong form, a surrogate, a truncated sequence.
  for (const char* bad : {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"}) {
    EXPECT_EQ(parse_mail_from(std::string("FROM:<a") + bad + "@b> SMTPUTF8").error,
              path_error::bad_address);
  }
}

TEST(MailFrom, AuthParameter) {
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=<>").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=e+3Dmc2@example.com").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=e+3dmc2@example.com").error,
            path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=+2B+3D").error, path_error::none);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=a+4").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=a+2B+").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH=a+2+").error, path_error::bad_parameter);
  EXPECT_EQ(parse_mail_from("FROM:<a@b> AUTH").error, path_error::bad_parameter);
}

TEST(MailFrom, NulInTheAddressIsAnError) {
  EXPECT_NE(parse_mail_from(std::string("FROM:<a\0@b>", 11)).error, path_error::none);
  EXPECT_NE(parse_mail_from(std::string("FROM:<\"a\0\"@b>", 13)).error, path_error::none);
  EXPECT_NE(parse_mail_from(std::string("FROM:<a@b> SIZE=1\0", 18)).error, path_error::none);
}

TEST(RcptTo, Recipient) {
  rcpt_to r = parse_rcpt_to("TO:<user@example.com>", false);
  EXPECT_EQ(r.error, path_error::none);
  EXPECT_EQ(r.recipient.local_part, "user");
  EXPECT_EQ(r.recipient.domain, "example.com");
  EXPECT_EQ(parse_rcpt_to("to: <user@example.com>", false).error, path_error::none);
  EXPECT_EQ(parse_rcpt_to("TO:<@hop.example:user@example.com>", false).recipient.local_part,
            "user");
}

TEST(RcptTo, Postmaster) {
  for (const char* argument : {"TO:<postmaster>", "TO:<PostMaster>", "to:<POSTMASTER>"}) {
    rcpt_to r = parse_rcpt_to(argument, false);
    EXPECT_EQ(r.error, path_error::none) << argument;
    EXPECT_EQ(r.recipient.local_part, "postmaster");
    EXPECT_TRUE(r.recipient.domain.empty());
  }
  rcpt_to r = parse_rcpt_to("TO:<Postmaster@example.com>", false);
  EXPECT_EQ(r.recipient.local_part, "Postmaster");
  EXPECT_EQ(r.recipient.domain, "example.com");
  EXPECT_EQ(parse_rcpt_to("TO:<postmasterx>", false).error, path_error::bad_address);
}

TEST(RcptTo, Errors) {
  EXPECT_EQ(parse_rcpt_to("TO:<>", false).error, path_error::bad_address);
  EXPECT_EQ(parse_rcpt_to("TO:user@example.com", false).error, path_error::syntax);
  EXPECT_EQ(parse_rcpt_to("FROM:<user@example.com>", false).error, path_error::syntax);
  EXPECT_EQ(parse_rcpt_to("TO:<user@example.com", false).error, path_error::syntax);
  EXPECT_EQ(parse_rcpt_to("TO:<user@@example.com>", false).error, path_error::bad_address);
  EXPECT_EQ(parse_rcpt_to("TO:<user@example.com> NOTIFY=NEVER", false).error,
            path_error::unknown_parameter);
  EXPECT_EQ(parse_rcpt_to("TO:<user@example.com> SMTPUTF8", true).error,
            path_error::unknown_parameter);
  EXPECT_EQ(parse_rcpt_to("TO:<user@example.com> ==", false).error, path_error::syntax);
  EXPECT_EQ(parse_rcpt_to(std::string("TO:<us\0er@example.com>", 22), false).error,
            path_error::bad_address);
}

TEST(RcptTo, Utf8OnlyWhenAllowed) {
  const char* argument =
      "TO:<\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80."
      "example>";
  EXPECT_EQ(parse_rcpt_to(argument, false).error, path_error::bad_address);
  EXPECT_EQ(parse_rcpt_to(argument, true).error, path_error::none);
  EXPECT_EQ(parse_rcpt_to("TO:<a@b>", true).error, path_error::none);
}

}  // namespace
}  // namespace mailwing::smtp
